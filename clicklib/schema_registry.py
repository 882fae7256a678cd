"""The schema registry: the pipeline's Avro schemas, kept as code and registered by `pipeline up`.

``schemas/<topic>-value.avsc`` is the value schema of one pipeline topic. Its subject in the
registry is the topic's name in the namespace plus ``-value``: Confluent's topic-name strategy,
which Flink's ``avro-confluent`` format and confluent-kafka's serializers both follow. Every
subject is kept BACKWARD compatible: a new version must read everything written with the
versions before it, so readers can move to a new schema before writers do.

``SchemaRegistry`` is the thin client: confluent-kafka's, which speaks the Confluent Schema
Registry API that Apicurio Registry also serves (under ``/apis/ccompat/v7``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError as ClientError

from clicklib import resources
from clicklib.exceptions import DefinitionError, IncompatibleSchemaError, SchemaRegistryError
from clicklib.settings import Settings
from clicklib.topics import TOPICS, topic_name

COMPATIBILITY = "BACKWARD"
SUFFIX = "-value.avsc"
NOT_FOUND = 404


@dataclass(frozen=True)
class TopicSchema:
    """The value schema of one pipeline topic, as read from its file."""

    topic_base: str  # "clickstream_avro"
    subject: str  # "t1_clickstream_avro-value"
    file: str  # where it was read, for errors: "schemas/clickstream_avro-value.avsc"
    text: str  # the Avro schema, JSON text as in the file

    @property
    def compact(self) -> str:
        """The schema as Avro's Java library prints it: what is registered, and what the jobs
        write with. Flink registers that printed form too, and the registry takes any other
        text, even one differing only in the order of keys, as a new version."""
        return json.dumps(_in_avro_order(json.loads(self.text)), separators=(",", ":"), ensure_ascii=False)

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in json.loads(self.text).get("fields", [])]


def load_schemas(settings: Settings, directory: Traversable | None = None) -> tuple[TopicSchema, ...]:
    """Every ``<topic>-value.avsc`` of ``schemas/``, checked to be an Avro schema of a pipeline topic."""
    from fastavro import parse_schema
    from fastavro.schema import SchemaParseException, UnknownType

    directory = directory or resources.schemas_dir()
    found = []
    for path in resources.listing(directory, ".avsc"):
        label = f"{directory.name}/{path.name}"
        base = path.name.removesuffix(SUFFIX)
        if not path.name.endswith(SUFFIX) or base not in TOPICS:
            raise DefinitionError(
                f"{label}: a schema file is named <topic>{SUFFIX} after a pipeline topic; "
                f"the topics are {', '.join(TOPICS)}"
            )
        text = path.read_text(encoding="utf-8")
        try:
            parsed = json.loads(text)
            is_record = isinstance(parsed, dict) and parsed.get("type") == "record"
            if not is_record or not isinstance(parsed.get("fields"), list):
                raise ValueError("a topic's value schema is a record with a list of fields")
            parse_schema(parsed)
        except json.JSONDecodeError as exc:
            raise DefinitionError(f"{label}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        except (SchemaParseException, UnknownType, TypeError, ValueError, KeyError) as exc:
            raise DefinitionError(f"{label}: not an Avro schema ({exc})") from None
        found.append(TopicSchema(base, f"{topic_name(settings, base)}-value", label, text))
    return tuple(found)


class SchemaRegistry:
    """A Confluent-compatible schema registry, through confluent-kafka's client."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.schema_registry_url
        self.client = SchemaRegistryClient({"url": self.url, "timeout": settings.request_timeout})

    def _call(self, what: str, call, *args, none_when_missing: bool = False):
        try:
            return call(*args)
        except ClientError as exc:
            if none_when_missing and exc.http_status_code == NOT_FOUND:
                return None
            raise SchemaRegistryError(
                f"the schema registry refused {what} (HTTP {exc.http_status_code}): {exc.error_message}",
                address=self.url,
            ) from None
        except Exception as exc:  # the HTTP client's own errors: refused, timed out, bad answer
            raise SchemaRegistryError(
                f"the schema registry at {self.url} could not be reached while {what} ({str(exc)[:160]}); "
                "start it with `clicklib stack up schema-registry`, or set CLICKLIB_SCHEMA_REGISTRY_URL",
                address=self.url,
            ) from None

    def subjects(self) -> list[str]:
        return self._call("listing subjects", self.client.get_subjects)

    def latest(self, subject: str):
        """The subject's newest version (``RegisteredSchema``: schema_id, version, schema), or None."""
        # Asked afresh each time: the client would keep the answer for good, even after a new
        # version or a deleted subject.
        self.client.clear_latest_caches()
        return self._call(f"reading {subject}", self.client.get_latest_version, subject, none_when_missing=True)

    def set_compatibility(self, subject: str, level: str) -> None:
        self._call(f"setting {subject}'s compatibility", self.client.set_compatibility, subject, level)

    def compatible(self, subject: str, text: str) -> bool:
        """Whether ``text`` may be the subject's next version (always, for a new subject)."""
        if self.latest(subject) is None:
            return True
        return self._call(f"checking {subject}", self.client.test_compatibility, subject, Schema(text, "AVRO"))

    def refusal(self, subject: str, text: str) -> str:
        """Why the registry refuses ``text`` as the subject's next version, in its words.

        Apicurio's compatibility check answers only yes or no (its reason is null, verbose or
        not); a registration it refuses names the field and changes nothing. Called only after
        the check said no, so the registration is refused too: the same rule decides both."""
        try:
            self.client.register_schema(subject, Schema(text, "AVRO"))
        except ClientError as exc:
            return exc.error_message
        except Exception as exc:
            return f"(the registry could not be asked why: {str(exc)[:120]})"
        return "(the registry took it after all)"

    def register(self, subject: str, text: str) -> int:
        """The schema's id: the one it already has, or a new one."""
        return self._call(f"registering {subject}", self.client.register_schema, subject, Schema(text, "AVRO"))

    def delete_subject(self, subject: str) -> None:
        """The subject and every version of it, for good (a missing subject is no error)."""
        for permanent in (False, True):
            self._call(f"deleting {subject}", self.client.delete_subject, subject, permanent, none_when_missing=True)
        self.client.clear_caches()

    def schema(self, schema_id: int) -> str:
        return self._call(f"reading schema {schema_id}", self.client.get_schema, schema_id).schema_str

    def close(self) -> None:
        # confluent-kafka's client holds an HTTP session; older versions have no close().
        close = getattr(self.client, "__exit__", None)
        if close is not None:
            close(None, None, None)


# The order in which Avro's Schema.toString() writes the keys of a type and of a record's field.
_KEY_ORDER = ("type", "name", "namespace", "doc", "fields", "symbols", "items", "values", "size", "default")
_FIELD_KEY_ORDER = ("name", "type", "doc", "default", "order", "aliases")


def _in_avro_order(node, order=_KEY_ORDER):
    if isinstance(node, list):
        return [_in_avro_order(item) for item in node]
    if not isinstance(node, dict):
        return node
    ranked = sorted(node, key=lambda key: order.index(key) if key in order else len(order))
    result = {}
    for key in ranked:
        value = node[key]
        if key == "fields" and isinstance(value, list):
            result[key] = [_in_avro_order(field, _FIELD_KEY_ORDER) for field in value]
        elif key in ("type", "items", "values"):
            result[key] = _in_avro_order(value)
        else:
            result[key] = value
    return result


_FIELD_PATH = re.compile(r"/fields/(\d+)")


def _named_fields(reason: str, schema: TopicSchema) -> str:
    """The registry's reason with each ``/fields/N`` followed by that field's name."""
    names = schema.field_names

    def name(match: re.Match) -> str:
        index = int(match.group(1))
        return f"{match.group(0)} ({names[index]!r})" if index < len(names) else match.group(0)

    return _FIELD_PATH.sub(name, reason)


def check_schemas(registry: SchemaRegistry, schemas: tuple[TopicSchema, ...]) -> None:
    """Raise ``IncompatibleSchemaError`` naming every schema file that would break its subject."""
    refused = []
    for schema in schemas:
        # Set before the check: a subject made elsewhere, with a looser rule or none, is held to this one.
        registry.set_compatibility(schema.subject, COMPATIBILITY)
        if not registry.compatible(schema.subject, schema.compact):
            reason = _named_fields(registry.refusal(schema.subject, schema.compact), schema)
            refused.append(f"{schema.file} cannot be the next version of subject {schema.subject}: {reason}")
    if refused:
        raise IncompatibleSchemaError(
            "\n".join(refused) + f"\nSubjects are kept {COMPATIBILITY} compatible: a new version may add fields "
            "with a default and drop fields, but not change a field's type or add one without a default. "
            "Give the new field a default, or keep the old type; nothing was submitted."
        )


def register_schemas(registry: SchemaRegistry, schemas: tuple[TopicSchema, ...]) -> dict[str, int]:
    """Each schema registered under its subject with BACKWARD compatibility; subject -> schema id."""
    check_schemas(registry, schemas)
    ids = {}
    for schema in schemas:
        ids[schema.subject] = registry.register(schema.subject, schema.compact)
    return ids


def delete_subjects(registry: SchemaRegistry, schemas: tuple[TopicSchema, ...]) -> None:
    """The subjects of the pipeline's topics, with every version: for when the topics are deleted."""
    for schema in schemas:
        registry.delete_subject(schema.subject)
