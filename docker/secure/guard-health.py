"""A web guard's health check in the secure docker-compose profile: the URL answers 200 to a
request with the login from /run/clicklib/web-guard.login (read here, never on a command line)."""

import base64
import sys
import urllib.request

with open("/run/clicklib/web-guard.login", "rb") as login:
    token = base64.b64encode(login.read().strip()).decode()
request = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Basic {token}"})
with urllib.request.urlopen(request, timeout=10) as answer:
    sys.exit(0 if answer.status == 200 else 1)
