"""An independent JWT signer for the agent's tests (Python `cryptography`, not Gangplank's code).

usage: jwt_sign.py ALG KEY_FILE CLAIMS_JSON [HEADER_JSON]
ALG is RS256, ES256 or EdDSA with a private PEM; HS256 uses the file's bytes as the HMAC key
(the classic attack: a public key used as a shared secret); `none` signs nothing.
"""
import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


alg, key_path, claims = sys.argv[1], sys.argv[2], sys.argv[3]
header = {"alg": alg, "typ": "JWT"}
if len(sys.argv) > 4:
    header.update(json.loads(sys.argv[4]))
signing_input = (b64(json.dumps(header).encode()) + "." + b64(claims.encode())).encode()
key_bytes = open(key_path, "rb").read()
if alg == "none":
    signature = b""
elif alg == "HS256":
    signature = hmac.new(key_bytes, signing_input, hashlib.sha256).digest()
else:
    key = serialization.load_pem_private_key(key_bytes, None)
    if alg == "RS256":
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        signature = key.sign(signing_input)
    else:
        sys.exit("unknown alg " + alg)
print(signing_input.decode() + "." + b64(signature))
