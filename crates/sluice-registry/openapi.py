"""The schema registry's OpenAPI document: `python3 crates/sluice-registry/openapi.py > crates/sluice-registry/openapi.json`.

Written out by hand from the routes in src/api/ (the handlers take raw bodies,
as Confluent's API does); tests/api_fuzz.rs holds the registry to it with
schemathesis, so a route or answer that changes without this file fails there.
"""
import json
CT = "application/vnd.schemaregistry.v1+json"
LEVELS = ["NONE","BACKWARD","BACKWARD_TRANSITIVE","FORWARD","FORWARD_TRANSITIVE","FULL","FULL_TRANSITIVE"]
def ci(word):
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)
level_pattern = "^(" + "|".join(ci(l) for l in LEVELS) + ")$"

def content(schema):
    return {CT: {"schema": schema}, "application/json": {"schema": schema}}
def resp(desc, schema):
    return {"description": desc, "content": {CT: {"schema": schema}}}
err = {"$ref": "#/components/schemas/Error"}
def E(desc): return resp(desc, err)
SUBJECT = {"name": "subject", "in": "path", "required": True,
           "description": "A subject, e.g. `<topic>-value`. Any text but `.` and `..` (which clients collapse as path segments).",
           "schema": {"type": "string", "minLength": 1, "pattern": r"^([^.][\s\S]*|\.[^.][\s\S]*|\.\.[\s\S]+)$"}}
VERSION = {"name": "version", "in": "path", "required": True,
           "description": "`latest`, `-1` (latest) or a version number from 1 to 2^31-1; anything else is 422 (42202).",
           "schema": {"type": "string", "minLength": 1}}
ID = {"name": "id", "in": "path", "required": True, "description": "A schema id (an unknown or malformed one is 404, 40403).",
      "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295}}
def flag(name, desc):
    return {"name": name, "in": "query", "required": False,
            "description": desc + " `true`, `True`, `1` or `yes` turn it on; any other value leaves it off (as Confluent's clients send it).",
            "schema": {"type": "string"}}
DELETED = flag("deleted", "Include soft-deleted subjects or versions.")
PERMANENT = flag("permanent", "Delete for good (after a soft delete).")
VERBOSE = flag("verbose", "List the incompatibilities.")
DEFAULT_TO_GLOBAL = flag("defaultToGlobal", "Answer the global level when the subject has none.")
schema_request = {"$ref": "#/components/schemas/SchemaRequest"}
body = {"required": True, "content": content(schema_request)}
WRITE = [{"bearer": []}, {"basic": []}]
def write_errors():
    return {"401": E("No write token, or an unknown one (40101)."), "403": E("A token that may only read (40301)."),
            "500": E("The schemas topic could not be written (50001), or the leader could not be reached from a follower (50003).")}

subject_version = {"type": "object", "required": ["subject", "version", "id", "schema"],
    "properties": {"subject": {"type": "string"}, "version": {"type": "integer", "minimum": 1}, "id": {"type": "integer", "minimum": 0}, "schema": {"type": "string"}}}
level_answer = {"type": "object", "required": ["compatibilityLevel"], "properties": {"compatibilityLevel": {"type": "string", "enum": LEVELS}}}
paths = {
  "/": {"get": {"operationId": "root", "summary": "An empty object: the registry answers.", "responses": {"200": resp("Up.", {"type": "object"})}}},
  "/subjects": {"get": {"operationId": "listSubjects", "summary": "Every subject with a live version.", "parameters": [DELETED],
      "responses": {"200": resp("Subject names.", {"type": "array", "items": {"type": "string"}})}}},
  "/subjects/{subject}": {
    "parameters": [SUBJECT],
    "post": {"operationId": "lookUpSchema", "summary": "Whether a schema is registered under the subject (no registration).",
       "parameters": [DELETED], "requestBody": body,
       "responses": {"200": resp("Registered: its version and id.", subject_version),
                     "404": E("No such subject (40401), or the schema is not registered under it (40403)."),
                     "422": E("Not a valid request or schema (42201).")}},
    "delete": {"operationId": "deleteSubject", "summary": "Soft-delete every version (or, with permanent, remove a soft-deleted subject).",
       "security": WRITE, "parameters": [PERMANENT],
       "responses": {"200": resp("The versions deleted.", {"type": "array", "items": {"type": "integer"}}),
                     "404": E("No such subject (40401), or not soft-deleted before a permanent delete (40405)."), **write_errors()}}},
  "/subjects/{subject}/versions": {
    "parameters": [SUBJECT],
    "get": {"operationId": "listVersions", "summary": "The subject's versions.", "parameters": [DELETED],
       "responses": {"200": resp("Version numbers.", {"type": "array", "items": {"type": "integer", "minimum": 1}}),
                     "404": E("No such subject (40401).")}},
    "post": {"operationId": "registerSchema", "summary": "Register a schema (the existing id when it is already there).",
       "security": WRITE, "requestBody": body,
       "responses": {"200": resp("Its id.", {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer", "minimum": 0}}}),
                     "409": E("Incompatible with the subject's earlier versions under its level (409)."),
                     "422": E("Not a valid request or schema (42201)."), **write_errors()}}},
  "/subjects/{subject}/versions/{version}": {
    "parameters": [SUBJECT, VERSION],
    "get": {"operationId": "getVersion", "summary": "One version of the subject.", "parameters": [DELETED],
       "responses": {"200": resp("The version.", subject_version),
                     "404": E("No such subject (40401) or version (40402)."), "422": E("Not a version (42202).")}},
    "delete": {"operationId": "deleteVersion", "summary": "Soft-delete a version (or, with permanent, remove a soft-deleted one).",
       "security": WRITE, "parameters": [PERMANENT],
       "responses": {"200": resp("The version deleted.", {"type": "integer"}),
                     "404": E("No such subject (40401) or version (40402), or not soft-deleted first (40407)."),
                     "422": E("Not a version (42202)."), **write_errors()}}},
  "/subjects/{subject}/versions/{version}/schema": {
    "parameters": [SUBJECT, VERSION],
    "get": {"operationId": "getVersionSchema", "summary": "The version's schema itself (its JSON).", "parameters": [DELETED],
       "responses": {"200": resp("The schema's JSON: an object, an array (a union) or a string (a primitive or a named type).", {}),
                     "404": E("No such subject (40401) or version (40402)."), "422": E("Not a version (42202).")}}},
  "/schemas/ids/{id}": {"parameters": [ID], "get": {"operationId": "getSchemaById", "summary": "The schema with this id.",
       "responses": {"200": resp("Its text.", {"type": "object", "required": ["schema"], "properties": {"schema": {"type": "string"}}}),
                     "404": E("No such schema (40403).")}}},
  "/schemas/ids/{id}/schema": {"parameters": [ID], "get": {"operationId": "getRawSchemaById", "summary": "The schema with this id, itself.",
       "responses": {"200": resp("The schema's JSON.", {}), "404": E("No such schema (40403).")}}},
  "/schemas/ids/{id}/versions": {"parameters": [ID], "get": {"operationId": "getSchemaUsages", "summary": "The subjects and versions that use this id.",
       "parameters": [DELETED],
       "responses": {"200": resp("Where it is registered.", {"type": "array", "items": {"type": "object", "required": ["subject", "version"],
                        "properties": {"subject": {"type": "string"}, "version": {"type": "integer", "minimum": 1}}}}),
                     "404": E("No such schema (40403).")}}},
  "/config": {
    "get": {"operationId": "getGlobalLevel", "summary": "The global compatibility level.", "responses": {"200": resp("The level.", level_answer)}},
    "put": {"operationId": "setGlobalLevel", "summary": "Set the global compatibility level.", "security": WRITE,
       "requestBody": {"required": True, "content": content({"$ref": "#/components/schemas/ConfigRequest"})},
       "responses": {"200": resp("The level set.", {"$ref": "#/components/schemas/ConfigAnswer"}),
                     "422": E("Not a request with a compatibility level (42201), or not a level (42203)."), **write_errors()}},
    "delete": {"operationId": "deleteGlobalLevel", "summary": "Back to the default global level (BACKWARD).", "security": WRITE,
       "responses": {"200": resp("The level that was in force.", level_answer), **write_errors()}}},
  "/config/{subject}": {
    "parameters": [SUBJECT],
    "get": {"operationId": "getSubjectLevel", "summary": "The subject's own compatibility level.", "parameters": [DEFAULT_TO_GLOBAL],
       "responses": {"200": resp("The level.", level_answer), "404": E("The subject has no level of its own (40408).")}},
    "put": {"operationId": "setSubjectLevel", "summary": "Set the subject's compatibility level.", "security": WRITE,
       "requestBody": {"required": True, "content": content({"$ref": "#/components/schemas/ConfigRequest"})},
       "responses": {"200": resp("The level set.", {"$ref": "#/components/schemas/ConfigAnswer"}),
                     "422": E("Not a request with a compatibility level (42201), or not a level (42203)."), **write_errors()}},
    "delete": {"operationId": "deleteSubjectLevel", "summary": "Remove the subject's own level (the global one applies).", "security": WRITE,
       "responses": {"200": resp("The level that was in force.", level_answer), "404": E("The subject has no level of its own (40401)."), **write_errors()}}},
  "/compatibility/subjects/{subject}/versions": {
    "parameters": [SUBJECT],
    "post": {"operationId": "testCompatibility", "summary": "Whether registering the schema would pass the subject's compatibility check.",
       "parameters": [VERBOSE], "requestBody": body,
       "responses": {"200": resp("The verdict.", {"$ref": "#/components/schemas/CompatibilityAnswer"}),
                     "404": E("No such subject (40401)."),
                     "422": E("Not a valid request or schema (42201).")}}},
  "/compatibility/subjects/{subject}/versions/{version}": {
    "parameters": [SUBJECT, VERSION],
    "post": {"operationId": "testCompatibilityWithVersion", "summary": "Whether the schema can read data of that version and the version can read its data, under the subject's level.",
       "parameters": [VERBOSE], "requestBody": body,
       "responses": {"200": resp("The verdict.", {"$ref": "#/components/schemas/CompatibilityAnswer"}),
                     "404": E("No such subject (40401) or version (40402)."),
                     "422": E("Not a valid request or schema (42201), or not a version (42202).")}}},
  "/mode": {"get": {"operationId": "getMode", "summary": "Always READWRITE.", "responses": {"200": resp("The mode.", {"$ref": "#/components/schemas/Mode"})}}},
  "/mode/{subject}": {"parameters": [SUBJECT], "get": {"operationId": "getSubjectMode", "summary": "Always READWRITE.", "responses": {"200": resp("The mode.", {"$ref": "#/components/schemas/Mode"})}}},
}
TOO_MANY = {"description": "Over the caller's rate limit (SLUICE_RATE_LIMIT): nothing was done; retry after Retry-After seconds.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": {"type": "object", "required": ["status", "error"],
        "properties": {"status": {"type": "string"}, "error": {"type": "string"}}}}}}
for item in paths.values():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch"):
            op["responses"]["429"] = TOO_MANY
doc = {
  "openapi": "3.0.3",
  "info": {"title": "Sluice schema registry", "version": "1",
           "description": "Confluent Schema Registry's REST API for Avro, kept in a compacted topic. Writes (registering, deleting, compatibility levels) need one of the registry's SLUICE_WRITE_TOKENS, as a bearer token or as the password of HTTP Basic auth (what Confluent's clients send from basic.auth.user.info); reads, look-ups and compatibility tests are open. Errors carry Confluent's error_code. With SLUICE_RATE_LIMIT set, a caller over its allowance is answered 429 with Retry-After."},
  "paths": paths,
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "basic": {"type": "http", "scheme": "basic", "description": "Any user name; the password is the token."}},
    "schemas": {
      "Error": {"type": "object", "required": ["error_code", "message"], "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}}},
      "SchemaRequest": {"type": "object", "required": ["schema"], "properties": {
          "schema": {"type": "string", "description": "The Avro schema's JSON, as text."},
          "schemaType": {"type": "string", "enum": ["AVRO"], "description": "AVRO (the default); this registry holds Avro schemas only."},
          "references": {"type": "array", "maxItems": 0, "items": {}, "description": "Schema references are not supported."}}},
      "ConfigRequest": {"type": "object", "required": ["compatibility"], "properties": {
          "compatibility": {"type": "string", "pattern": level_pattern, "description": "A level, in any letter case: " + ", ".join(LEVELS) + "."}}},
      "ConfigAnswer": {"type": "object", "required": ["compatibility"], "properties": {"compatibility": {"type": "string", "enum": LEVELS}}},
      "CompatibilityAnswer": {"type": "object", "required": ["is_compatible"], "properties": {
          "is_compatible": {"type": "boolean"}, "messages": {"type": "array", "items": {"type": "string"}, "description": "With verbose: why not."}}},
      "Mode": {"type": "object", "required": ["mode"], "properties": {"mode": {"type": "string", "enum": ["READWRITE"]}}},
    }},
}
print(json.dumps(doc, indent=2))
