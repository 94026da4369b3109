"""A real RFC 3161 time-stamp authority on 127.0.0.1, with its own test CA (built by the tests).

The TSA answers POSTed TimeStampReq with a granted TimeStampResp whose token is
a CMS SignedData over a TSTInfo, signed by a TSA certificate (critical EKU
id-kp-timeStamping) issued by a test root CA, with the content-type,
message-digest and ESS signing-certificate-v2 attributes that RFC 3161, RFC
5816 and `openssl ts -verify` require. Built with cryptography and asn1crypto.
The private keys exist only in memory for the duration of a test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webserver import run_server


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class LocalTSA:
    """A CA and a TSA certificate; ``shift`` moves the TSA's clock (a lying or broken TSA)."""

    root_cert: x509.Certificate
    tsa_cert: x509.Certificate
    tsa_key: rsa.RSAPrivateKey
    shift: dt.timedelta = dt.timedelta(0)
    serial: int = 1
    requests: list[bytes] = field(default_factory=list)

    @classmethod
    def create(cls, name: str = "Archiver Test TSA") -> LocalTSA:
        now = dt.datetime.now(dt.UTC)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} Root CA"))
            .issuer_name(_name(f"{name} Root CA"))
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tsa = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(root.subject)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
            )
            .sign(root_key, hashes.SHA256())
        )
        return cls(root, tsa, tsa_key)

    def root_pem(self, path: Path) -> Path:
        path.write_bytes(self.root_cert.public_bytes(serialization.Encoding.PEM))
        return path

    def respond(self, request_der: bytes) -> bytes:
        """A TimeStampResp for a DER TimeStampReq."""
        self.requests.append(request_der)
        req = tsp.TimeStampReq.load(request_der)
        self.serial += 1
        tst_info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.3.6.1.4.1.99999.1",
                "message_imprint": req["message_imprint"],
                "serial_number": self.serial,
                "gen_time": dt.datetime.now(dt.UTC) + self.shift,
                "accuracy": {"seconds": 1},
                "ordering": False,
                "nonce": req["nonce"].native,
            }
        )
        tst_der = tst_info.dump()
        cert_der = self.tsa_cert.public_bytes(serialization.Encoding.DER)
        asn1_cert = asn1_x509.Certificate.load(cert_der)
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}),
                cms.CMSAttribute(
                    {
                        "type": "signing_certificate_v2",
                        "values": [
                            {
                                "certs": [
                                    {
                                        "hash_algorithm": {"algorithm": "sha256"},
                                        "cert_hash": hashlib.sha256(cert_der).digest(),
                                        "issuer_serial": {
                                            "issuer": [
                                                asn1_x509.GeneralName(
                                                    name="directory_name", value=asn1_cert.issuer
                                                )
                                            ],
                                            "serial_number": asn1_cert.serial_number,
                                        },
                                    }
                                ]
                            }
                        ],
                    }
                ),
            ]
        )
        # the signature covers the DER of the attributes as a SET OF (tag 0x31), RFC 5652 5.4
        to_sign = b"\x31" + signed_attrs.dump()[1:]
        signature = self.tsa_key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value={"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number},
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(tst_der),
                },
                "certificates": [asn1_cert] if req["cert_req"].native else [],
                "signer_infos": [signer],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()


class _Handler(BaseHTTPRequestHandler):
    tsa: LocalTSA
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(length, 1 << 16))
        if self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_response(415)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        out = self.tsa.respond(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@contextmanager
def serve_tsa(tsa: LocalTSA) -> Iterator[str]:
    """Yields the TSA's URL on 127.0.0.1."""
    with run_server(type("H", (_Handler,), {"tsa": tsa})) as base:
        yield f"{base}/tsa"
