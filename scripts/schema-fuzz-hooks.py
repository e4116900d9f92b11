"""Schemathesis hooks for scripts/schema-fuzz.sh.

The document names two binary request bodies schemathesis has no encoder for: the CBOR sync batch and the
resumable photo chunk. Both go out as raw bytes, like application/octet-stream; the server then has to refuse
what is not a valid batch or chunk with a 4xx, which is exactly what the run checks.
"""

import schemathesis

schemathesis.serializer.alias(
    ["application/cbor", "application/offset+octet-stream"], "application/octet-stream"
)
