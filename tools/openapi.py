#!/usr/bin/env python3
"""Writes crates/logflux-server/openapi.json, the server's API description.

The document is data kept in the repository; this script is how it is edited. A test checks
that every operation here is routed by the server and every route is described here.
Run: python3 tools/openapi.py
"""
import json
import pathlib

def err(desc):
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

def ok_json(desc, schema):
    return {"description": desc, "content": {"application/json": {"schema": schema}}}

ref = lambda n: {"$ref": f"#/components/schemas/{n}"}
# Record streams: NDJSON, or (asked for in Accept) the binary record stream of docs/formats.md,
# whose frames carry the same objects without "body" and the ciphertext raw.
ndjson = lambda desc, schema: {"description": desc, "content": {"application/x-ndjson": {"schema": schema}, "application/vnd.logflux.records": {"schema": {"type": "string", "format": "binary", "description": "The binary record stream (docs/formats.md): the same messages as the NDJSON form, each a length-prefixed frame whose header is the line's JSON object without body, followed by the record's ciphertext as raw bytes. Sent when the request's Accept names application/vnd.logflux.records."}}}}
common_errors = {"400": err("Bad request"), "401": err("Missing, invalid, expired or revoked credential"), "403": err("Credential lacks the scope"), "503": err("Temporarily unavailable; retry")}
ingest_errors = {"400": err("Bad request (not retried by SDKs)"), "401": err("Bad API key"), "413": err("Too large"), "429": {"description": "Rate limited", "headers": {"Retry-After": {"schema": {"type": "integer"}}, "X-RateLimit-Limit": {"schema": {"type": "integer"}}, "X-RateLimit-Remaining": {"schema": {"type": "integer"}}, "X-RateLimit-Reset": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": ref("Error")}}}, "503": err("Nothing of the request was stored; retry"), "507": err("The tenant's storage quota is used up")}
pat = [{"pat": []}]
apikey = [{"apiKey": []}]

def op(summary, responses, security=None, body=None, params=None, tags=None):
    o = {"summary": summary, "responses": responses}
    if security is not None:
        o["security"] = security
    if body is not None:
        # Any body-reading endpoint answers a declared oversize Content-Length at once.
        responses.setdefault("413", err("Declared body larger than the endpoint reads (answered before it is read)"))
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        o["parameters"] = params
    if tags:
        o["tags"] = tags
    return o

path_param = lambda name, desc: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": desc}

doc = {
    "openapi": "3.1.0",
    "info": {"title": "LogFlux server API", "version": "0.1.0", "description": "Stores and indexes encrypted logs it cannot read. Ingest is compatible with the LogFlux v3 SDKs; queries return sealed records that clients decrypt."},
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "Ingest API key <region>-lf_<secret>"},
            "pat": {"type": "http", "scheme": "bearer", "description": "Personal access token lf_pat_<secret>. Scopes: read (queries, tail, data keys, applications), write (read, and provisioning ingest: create applications, set retention, create/list/revoke API keys), admin (write, and access tokens, the tenant public key, erasure, the audit log)"},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["status", "error", "request_id"], "properties": {
                "status": {"const": "error"},
                "error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}, "retry_after": {"type": "integer"}}},
                "request_id": {"type": "string"}}},
            "Info": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "region": {"type": "string"}, "limits": ref("Limits"), "features": {"type": "array", "items": {"type": "string"}}}},
            "Limits": {"type": "object", "properties": {"max_batch_size": {"type": "integer"}, "max_payload_size": {"type": "integer"}, "max_request_size": {"type": "integer"}}},
            "HandshakeInit": {"type": "object", "properties": {"api_key": {"type": "string"}}},
            "HandshakeInitReply": {"type": "object", "required": ["status", "data"], "properties": {"status": {"const": "success"}, "data": {"type": "object", "required": ["public_key"], "properties": {"public_key": {"type": "string"}, "supports_multipart": {"type": "boolean"}, "max_batch_size": {"type": "integer"}, "max_payload_size": {"type": "integer"}, "max_request_size": {"type": "integer"}, "limits": ref("Limits"), "tenant_id": {"type": "string"}, "application_id": {"type": "string"}}}}},
            "HandshakeComplete": {"type": "object", "required": ["encrypted_secret"], "properties": {"api_key": {"type": "string"}, "encrypted_secret": {"type": "string", "description": "base64 RSA-OAEP-SHA256 wrapped 32-byte key"}, "key_id": {"type": "string", "pattern": "^ak_[0-9a-f]{32}$", "description": "Optional id chosen by an agent; registering the same id and key again is idempotent"}}},
            "HandshakeCompleteReply": {"type": "object", "required": ["status", "key_id", "data"], "properties": {"status": {"const": "success"}, "key_id": {"type": "string"}, "key_uuid": {"type": "string"}, "data": {"type": "object", "properties": {"key_id": {"type": "string"}, "key_uuid": {"type": "string"}}}}},
            "IngestReply": {"type": "object", "properties": {"status": {"const": "accepted"}, "accepted": {"type": "integer"}, "duplicates": {"type": "integer"}}},
            "TimeBound": {"oneOf": [{"type": "integer", "description": "Unix nanoseconds"}, {"type": "string", "format": "date-time"}]},
            "QueryRequest": {"type": "object", "additionalProperties": False, "properties": {
                "from": ref("TimeBound"), "to": ref("TimeBound"),
                "applications": {"type": "array", "items": {"type": "string"}},
                "entry_types": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
                "tokens": {"type": "array", "maxItems": 64, "items": {"type": "array", "minItems": 1, "maxItems": 4096, "items": {"type": "string"}}, "description": "All of any-of token groups. Records not sealed by an agent (SDK entries) carry the reserved token 0000000000000000: add it to a group to keep them."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
                "order": {"enum": ["newest", "oldest"], "description": "newest: segments by (max_ts, id) descending; oldest: by (min_ts, id) ascending"},
                "cursor": {"type": ["string", "null"]},
                "bodies": {"type": "boolean", "default": True, "description": "false: record lines without body, listed from the segments' footers alone (no record is read); fetch the bodies a client lacks with POST /v1/records. Such a line counts 512 bytes toward a page's 32 MiB, so only the limit ends a page. Servers before this field refuse it (400 unknown field `bodies`)."}}},
            "RecordsRequest": {"type": "object", "additionalProperties": False, "required": ["records"], "properties": {
                "records": {"type": "array", "maxItems": 1000, "items": {"type": "object", "additionalProperties": False, "required": ["segment_id", "record_id"], "properties": {"segment_id": {"type": "integer"}, "record_id": {"type": "string"}}}, "description": "segment_id and record_id of query record lines"}}},
            "TailRequest": {"type": "object", "additionalProperties": False, "properties": {
                "applications": {"type": "array", "items": {"type": "string"}},
                "entry_types": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
                "tokens": {"type": "array", "maxItems": 64, "items": {"type": "array", "minItems": 1, "maxItems": 4096, "items": {"type": "string"}}},
                "after_segment": {"type": "integer"}}},
            "RecordLine": {"type": "object", "description": "One line of a query or tail stream: {type: record|damaged|end|heartbeat|caught_up, …}. A caught_up line (tail resumed with after_segment) follows the records committed while the client was away. A damaged line names a segment the server cannot read (its footer fails its checksum): its records are missing from the answer, the rest is complete.", "required": ["type"], "properties": {
                "type": {"enum": ["record", "damaged", "end", "heartbeat", "caught_up"]}, "message": {"type": "string", "description": "damaged lines: what is wrong"},
                "application_id": {"type": "string"}, "segment_id": {"type": "integer"}, "record_id": {"type": "string"}, "key_id": {"type": "string"},
                "payload_type": {"type": "integer"}, "entry_type": {"type": "integer"}, "nonce": {"type": ["string", "null"]}, "crlf_stripped": {"type": "boolean"},
                "min_ts": {"type": "integer"}, "max_ts": {"type": "integer"}, "count": {"type": "integer"}, "received_ns": {"type": "integer"}, "body": {"type": "string", "description": "base64 ciphertext (absent when the query asked bodies: false)"},
                "cursor": {"type": ["string", "null"]}, "watermark": {"type": ["integer", "null"], "description": "record and end lines of a query: no later record holds an entry beyond this time (newer when newest first, older when oldest first)"}, "records": {"type": "integer"}, "missing": {"type": "array", "items": {"type": "string"}, "description": "end line of /v1/records: requested record ids that are not there (not in the segment, or the segment is not the token's tenant's)"}, "more": {"type": "array", "items": {"type": "object", "properties": {"segment_id": {"type": "integer"}, "record_id": {"type": "string"}}}, "description": "end line of /v1/records: records found but beyond the answer's 32 MiB of bodies, in request order: ask for them again"}, "segments_scanned": {"type": "integer"}, "segments_pruned": {"type": "integer"}, "after_segment": {"type": "integer"}}},
            "Me": {"type": "object", "properties": {"tenant_id": {"type": "string"}, "token_id": {"type": "string"}, "token_name": {"type": "string"}, "scopes": {"type": "array", "items": {"enum": ["read", "write", "admin"]}}, "expires_ns": {"type": "integer"}}},
            "DataKey": {"type": "object", "properties": {"key_id": {"type": "string"}, "application_id": {"type": "string"}, "wrapped_key": {"type": "string"}, "created_ns": {"type": "integer"}}},
            "Application": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "retention_days": {"type": ["integer", "null"]}, "created_ns": {"type": "integer"}}},
            "ApiKey": {"type": "object", "properties": {"id": {"type": "string"}, "application_id": {"type": "string"}, "name": {"type": "string"}, "prefix": {"type": "string"}, "signature_required": {"type": "boolean"}, "created_ns": {"type": "integer"}, "revoked_ns": {"type": ["integer", "null"]}, "last_used_ns": {"type": ["integer", "null"]}, "api_key": {"type": "string", "description": "Only in the creation reply"}}},
            "Token": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "prefix": {"type": "string"}, "scopes": {"type": "array", "items": {"enum": ["read", "write", "admin"]}}, "created_ns": {"type": "integer"}, "expires_ns": {"type": "integer"}, "revoked_ns": {"type": ["integer", "null"]}, "last_used_ns": {"type": ["integer", "null"]}, "token": {"type": "string", "description": "Only in the creation reply"}}},
            "PublicKey": {"type": "object", "properties": {"public_key_pem": {"type": "string"}, "fingerprint": {"type": "string"}}},
            "AuditPage": {"type": "object", "properties": {"events": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "at_ns": {"type": "integer"}, "actor": {"type": "string"}, "action": {"type": "string"}, "target": {"type": "string"}, "remote": {"type": "string"}, "details": {"type": "string"}}}}, "next_before": {"type": ["integer", "null"]}}},
        },
    },
    "paths": {
        "/health": {"get": op("Liveness for SDKs", {"200": {"description": "OK", "content": {"text/plain": {"schema": {"const": "OK"}}}}}, security=[], tags=["meta"])},
        "/healthz": {"get": op("Liveness", {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}, security=[], tags=["meta"])},
        "/readyz": {"get": op("Readiness (catalog reachable)", {"200": {"description": "ready", "content": {"text/plain": {"schema": {"type": "string"}}}}, "503": err("not ready")}, security=[], tags=["meta"])},
        "/info": {"get": op("Version, region, limits, features", {"200": ok_json("info", ref("Info"))}, security=[], tags=["meta"])},
        "/version": {"get": op("Same as /info (older SDKs)", {"200": ok_json("info", ref("Info"))}, security=[], tags=["meta"])},
        "/openapi.json": {"get": op("This document", {"200": {"description": "OpenAPI", "content": {"application/json": {"schema": {"type": "object"}}}}}, security=[], tags=["meta"])},
        "/metrics": {"get": op("Prometheus metrics", {"200": {"description": "OpenMetrics text", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}}, security=[], tags=["meta"])},
        "/v1/handshake/init": {"post": op("Tenant public key and limits (exactly 200)", {"200": ok_json("public key", ref("HandshakeInitReply")), **ingest_errors}, security=apikey, body=ref("HandshakeInit"), tags=["ingest"])},
        "/v1/handshake/complete": {"post": op("Register a wrapped data key", {"200": ok_json("key id", ref("HandshakeCompleteReply")), **ingest_errors, "409": err("key_id registered with another key")}, security=apikey, body=ref("HandshakeComplete"), tags=["ingest"])},
        "/v1/ingest": {"post": {"summary": "Store sealed records (multipart/mixed, one part per record)", "tags": ["ingest"], "security": apikey,
            "requestBody": {"required": True, "content": {"multipart/mixed": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"202": ok_json("stored (or already stored)", ref("IngestReply")), **ingest_errors}}},
        "/v1/query": {"post": op("Matching sealed records, as NDJSON or (Accept: application/vnd.logflux.records) the binary record stream", {"200": ndjson("record lines then an end line", ref("RecordLine")), **common_errors, "404": err("unknown application"), "409": err("the name matches several applications (catalogs from before names were case-folded): use the id")}, security=pat, body=ref("QueryRequest"), tags=["query"])},
        "/v1/records": {"post": op("Records by segment and id, with their bodies, in request order, as NDJSON or the binary record stream", {"200": ndjson("record (and damaged) lines then an end line with missing and more", ref("RecordLine")), **common_errors}, security=pat, body=ref("RecordsRequest"), tags=["query"])},
        "/v1/tail": {"post": op("Live tail: new matching records as NDJSON or the binary record stream, heartbeats when idle", {"200": ndjson("record, damaged, heartbeat and caught_up lines", ref("RecordLine")), **common_errors, "404": err("unknown application"), "409": err("the name matches several applications (catalogs from before names were case-folded): use the id")}, security=pat, body=ref("TailRequest"), tags=["query"])},
        "/v1/keys/{key_id}": {"get": op("A wrapped data key", {"200": ok_json("wrapped key", ref("DataKey")), **common_errors, "404": err("no such key in this tenant")}, security=pat, params=[path_param("key_id", "data key id")], tags=["query"])},
        "/v1/me": {"get": op("The token's tenant, name, scopes and expiry", {"200": ok_json("who", ref("Me")), **common_errors}, security=pat, tags=["query"])},
        "/v1/applications": {"get": op("Applications (read scope)", {"200": ok_json("applications", {"type": "object", "properties": {"applications": {"type": "array", "items": ref("Application")}}}), **common_errors}, security=pat, tags=["query"])},
        "/v1/admin/applications": {
            "get": op("Applications", {"200": ok_json("applications", {"type": "object", "properties": {"applications": {"type": "array", "items": ref("Application")}}}), **common_errors}, security=pat, tags=["admin"]),
            "post": op("Create an application", {"201": ok_json("created", ref("Application")), **common_errors, "409": err("an application of this name (ignoring case) exists")}, security=pat, body={"type": "object", "required": ["name"], "additionalProperties": False, "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", "description": "Case-insensitive (stored lower-case; Web and web are one name), and never starting with app_, the prefix of every application id"}}}, tags=["admin"])},
        "/v1/admin/applications/{app}/retention": {"put": op("Set retention", {"200": ok_json("application", ref("Application")), **common_errors, "404": err("unknown application"), "409": err("the name matches several applications (catalogs from before names were case-folded): use the id")}, security=pat, params=[path_param("app", "application id or name")], body={"type": "object", "additionalProperties": False, "properties": {"days": {"type": ["integer", "null"], "minimum": 1, "maximum": 36500}}}, tags=["admin"])},
        "/v1/admin/api-keys": {
            "get": op("API keys (never the keys themselves)", {"200": ok_json("keys", {"type": "object", "properties": {"api_keys": {"type": "array", "items": ref("ApiKey")}}}), **common_errors}, security=pat, tags=["admin"]),
            "post": op("Create an API key (shown once)", {"201": ok_json("created", ref("ApiKey")), **common_errors, "404": err("unknown application"), "409": err("the name matches several applications (catalogs from before names were case-folded): use the id")}, security=pat, body={"type": "object", "required": ["application", "name"], "additionalProperties": False, "properties": {"application": {"type": "string"}, "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "region": {"enum": ["eu", "us", "ca", "au", "ap"]}, "signature_required": {"type": "boolean"}}}, tags=["admin"])},
        "/v1/admin/api-keys/{id}": {"delete": op("Revoke an API key", {"204": {"description": "revoked"}, **common_errors, "404": err("no such active key")}, security=pat, params=[path_param("id", "API key id")], tags=["admin"])},
        "/v1/admin/tokens": {
            "get": op("Access tokens", {"200": ok_json("tokens", {"type": "object", "properties": {"tokens": {"type": "array", "items": ref("Token")}}}), **common_errors}, security=pat, tags=["admin"]),
            "post": op("Create an access token (shown once)", {"201": ok_json("created", ref("Token")), **common_errors}, security=pat, body={"type": "object", "required": ["name", "scopes"], "additionalProperties": False, "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "scopes": {"type": "array", "minItems": 1, "items": {"enum": ["read", "write", "admin"]}}, "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650}}}, tags=["admin"])},
        "/v1/admin/tokens/{id}": {"delete": op("Revoke an access token", {"204": {"description": "revoked"}, **common_errors, "404": err("no such active token")}, security=pat, params=[path_param("id", "token id")], tags=["admin"])},
        "/v1/admin/public-key": {
            "get": op("The tenant public key", {"200": ok_json("key", ref("PublicKey")), **common_errors, "404": err("none yet")}, security=pat, tags=["admin"]),
            "put": op("Set the tenant public key", {"200": ok_json("key", ref("PublicKey")), **common_errors}, security=pat, body={"type": "object", "required": ["public_key_pem"], "additionalProperties": False, "properties": {"public_key_pem": {"type": "string"}}}, tags=["admin"])},
        "/v1/admin/erase": {"post": op("Erase every record of an application overlapping [from, to] (records are erased whole)", {"200": ok_json("what was erased", {"type": "object", "properties": {"application_id": {"type": "string"}, "segments_deleted": {"type": "integer"}, "segments_rewritten": {"type": "integer"}, "records_erased": {"type": "integer"}}}), **common_errors, "404": err("unknown application"), "409": err("the name matches several applications (catalogs from before names were case-folded): use the id")}, security=pat, body={"type": "object", "required": ["application", "from", "to"], "additionalProperties": False, "properties": {"application": {"type": "string"}, "from": ref("TimeBound"), "to": ref("TimeBound")}}, tags=["admin"])},
        "/v1/admin/audit": {"get": op("Audit log, newest first", {"200": ok_json("events", ref("AuditPage")), **common_errors}, security=pat, params=[{"name": "before", "in": "query", "schema": {"type": "integer"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}], tags=["admin"])},
    },
}

out = pathlib.Path(__file__).resolve().parent.parent / "crates/logflux-server/openapi.json"
out.write_text(json.dumps(doc, indent=2) + "\n")
print(f"wrote {out}")
