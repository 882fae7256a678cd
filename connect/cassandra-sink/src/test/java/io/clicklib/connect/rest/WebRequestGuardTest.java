package io.clicklib.connect.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class WebRequestGuardTest {

    private static String refusal(List<String> hosts, List<String> origins, String fetchSite) {
        return WebRequestGuard.refusal(hosts, origins, fetchSite, Set.of());
    }

    @Test
    void theStacksOwnRequestsAreServed() {
        assertEquals("", refusal(List.of("127.0.0.1:8083"), List.of(), null));
        assertEquals("", refusal(List.of("localhost:8083"), List.of("http://localhost:8083"), "same-origin"));
        assertEquals("", refusal(List.of("[::1]:8083"), List.of(), "none"));
        assertEquals("", refusal(List.of("LocalHost."), List.of("HTTP://localhost."), null));
        assertEquals("", refusal(List.of("app.localhost:8083"), List.of(), null));
        assertEquals("", refusal(List.of("127.1.2.3"), List.of(), null));
    }

    @Test
    void exactlyOneHostAndAtMostOneOrigin() {
        String reason = "a request needs exactly one Host header and at most one Origin header";
        assertEquals(reason, refusal(List.of(), List.of(), null));
        assertEquals(reason, refusal(List.of("localhost", "localhost"), List.of(), null));
        assertEquals(reason, refusal(List.of("localhost"), List.of("http://localhost", "http://localhost"), null));
    }

    @Test
    void aHostThatIsNotThisMachineIsRefused() {
        assertEquals("the Host header 'evil.example:8083' does not name this machine; use http://127.0.0.1 or "
                + "http://localhost", refusal(List.of("evil.example:8083"), List.of(), null));
        for (String host : List.of("10.0.0.1", "127.1", "127.000.0.1", "[::ffff:127.0.0.1]", "[::2]",
                "localhost.evil.example", "localhost:123456", "local host", "user@localhost", "")) {
            assertTrue(refusal(List.of(host), List.of(), null).startsWith("the Host header "), host);
        }
    }

    @Test
    void allowedHostsAreServedToo() {
        Set<String> allowed = Set.of("Worker-1.example", "[fd00::5]");
        assertEquals("", WebRequestGuard.refusal(List.of("worker-1.EXAMPLE:8083"), List.of(), null, allowed));
        assertEquals("", WebRequestGuard.refusal(List.of("[FD00::5]:8083"), List.of(), null, allowed));
        assertTrue(WebRequestGuard.refusal(List.of("worker-2.example"), List.of(), null, allowed)
                .startsWith("the Host header "));

        WebRequestGuard guard = new WebRequestGuard();
        guard.configure(Map.of(WebRequestGuard.ALLOWED_HOSTS_CONFIG, " worker-1.example , ,other"));
        guard.configure(Map.of());
        assertFalse(guard.version().isEmpty());
    }

    @Test
    void onlyThisServicesOwnPagesMayCall() {
        assertEquals("requests from web pages of 'http://evil.example' are not served; only this service's own "
                + "pages may call", refusal(List.of("localhost:8083"), List.of("http://evil.example"), null));
        for (String origin : List.of("null", "", "https://localhost:8083", "http://localhost:8888",
                "http://127.0.0.1:8083", "http://[::1")) {
            assertTrue(refusal(List.of("localhost:8083"), List.of(origin), null).startsWith("requests from web pages"),
                    origin);
        }
    }

    @Test
    void aRequestOfAnotherSiteIsRefused() {
        assertEquals("requests a web page of another site makes (Sec-Fetch-Site: cross-site) are not served",
                refusal(List.of("localhost:8083"), List.of(), "cross-site"));
        assertTrue(refusal(List.of("localhost:8083"), List.of(), "same-site").startsWith("requests a web page"));
    }

    @Test
    void loopbackNamesAndAddresses() {
        for (String host : List.of("localhost", "LOCALHOST.", "localhost.localdomain", "ip6-localhost", "ip6-loopback",
                "x.localhost", "127.0.0.1", "127.255.255.254", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::0:1")) {
            assertTrue(WebRequestGuard.isLoopbackName(host), host);
        }
        for (String host : List.of("localhost.example", "128.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "1::1",
                "::1::", "12345::1", "")) {
            assertFalse(WebRequestGuard.isLoopbackName(host), host);
        }
    }
}
