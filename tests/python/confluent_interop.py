"""Drives the Sluice registry with Confluent's own Python client.

Usage: confluent_interop.py REGISTRY_URL WRITE_TOKEN WORKDIR
Writes with the token as Basic auth password (basic.auth.user.info), as a
Confluent client is configured for a registry with authentication. Reads WORKDIR/rust.bin (written by the Rust encoder), writes WORKDIR/py.bin
(for the Rust decoder) and prints what it decoded as JSON.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

url, token, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
client = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"sluice:{token}"})
anonymous = SchemaRegistryClient({"url": url})

V1 = json.dumps({"type": "record", "name": "Note", "namespace": "io.py",
                 "fields": [{"name": "text", "type": "string"}]})
V2 = json.dumps({"type": "record", "name": "Note", "namespace": "io.py",
                 "fields": [{"name": "text", "type": "string"},
                            {"name": "lang", "type": "string", "default": "en"}]})
BAD = json.dumps({"type": "record", "name": "Note", "namespace": "io.py",
                  "fields": [{"name": "text", "type": "int"}]})

# Without credentials, writes are refused and nothing is registered.
try:
    anonymous.register_schema("py-value", Schema(V1, "AVRO"))
    raise AssertionError("a write without credentials was accepted")
except SchemaRegistryError as e:
    assert e.http_status_code == 401 and e.error_code == 40101, (e.http_status_code, e.error_code)
assert "py-value" not in anonymous.get_subjects()

# Register, look up, evolve.
id1 = client.register_schema("py-value", Schema(V1, "AVRO"))
assert client.register_schema("py-value", Schema(V1, "AVRO")) == id1
found = client.lookup_schema("py-value", Schema(V1, "AVRO"))
assert found.version == 1 and found.schema_id == id1, found
id2 = client.register_schema("py-value", Schema(V2, "AVRO"))
assert id2 != id1
latest = client.get_latest_version("py-value")
assert latest.version == 2 and latest.schema_id == id2, latest
assert client.get_versions("py-value") == [1, 2]
assert "py-value" in client.get_subjects()
assert client.get_schema(id1).schema_str == V1

# An incompatible change is refused with Confluent's 409.
try:
    client.register_schema("py-value", Schema(BAD, "AVRO"))
    raise AssertionError("incompatible schema was accepted")
except SchemaRegistryError as e:
    assert e.http_status_code == 409 and e.error_code == 409, (e.http_status_code, e.error_code)

assert client.test_compatibility("py-value", Schema(BAD, "AVRO")) is False
client.set_compatibility("py-value", "FULL_TRANSITIVE")
assert client.get_compatibility("py-value") == "FULL_TRANSITIVE"

# Serialize with Confluent's serializer for the Rust decoder.
ctx = SerializationContext("py", MessageField.VALUE)
serializer = AvroSerializer(client, V2, conf={"auto.register.schemas": False, "use.latest.version": False})
with open(f"{workdir}/py.bin", "wb") as f:
    f.write(serializer({"text": "hello from python", "lang": "fr"}, SerializationContext("py", MessageField.VALUE)))

# Deserialize what the Rust encoder wrote.
deserializer = AvroDeserializer(client)
with open(f"{workdir}/rust.bin", "rb") as f:
    decoded = deserializer(f.read(), ctx)
print(json.dumps(decoded, default=str))
