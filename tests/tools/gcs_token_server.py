"""An OAuth 2.0 token endpoint for Google service-account keys, for Coffer's GCS tests.

fake-gcs-server does not check credentials, so this stands in for oauth2.googleapis.com: at
start it writes a fresh service-account key to KEY_FILE (and a second key for the same
account, which it does not trust, to WRONG_KEY_FILE); it then answers the JWT-bearer grant
(RFC 7523) after verifying the assertion with google-auth, exactly as Google's endpoint
answers it, and counts the tokens it issued in COUNT_FILE.

Usage: gcs_token_server.py PORT KEY_FILE WRONG_KEY_FILE COUNT_FILE
"""

import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

EMAIL = "coffer-test@coffer-project.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

port, key_file, wrong_key_file, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
token_uri = f"http://127.0.0.1:{port}/token"


def new_key(path, key_id):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    document = {
        "type": "service_account",
        "project_id": "coffer-project",
        "private_key_id": key_id,
        "private_key": pem.decode(),
        "client_email": EMAIL,
        "client_id": "1",
        "token_uri": token_uri,
    }
    with open(path, "w") as f:
        json.dump(document, f)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


trusted = new_key(key_file, "trusted")
new_key(wrong_key_file, "untrusted")
issued = 0
with open(count_file, "w") as f:
    f.write("0")


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global issued
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        if self.path != "/token" or form.get("grant_type") != [GRANT] or "assertion" not in form:
            return self.answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
        try:
            claims = jwt.decode(form["assertion"][0], certs={"trusted": trusted.decode()}, audience=token_uri)
        except Exception as e:  # google-auth raises several types for bad signatures and claims
            return self.answer(400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. ({e})"})
        if claims.get("iss") != EMAIL or claims.get("scope") != SCOPE:
            return self.answer(400, {"error": "invalid_scope", "error_description": "Invalid issuer or scope."})
        issued += 1
        with open(count_file, "w") as f:
            f.write(str(issued))
        self.answer(200, {"access_token": f"ya29.coffer-test-{issued}", "expires_in": 3599, "token_type": "Bearer"})

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
