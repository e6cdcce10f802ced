"""Mutual TLS between services, attacked: a plaintext client, a client without a certificate and a client with a
certificate of another authority reach nothing and write nothing; a service's client refuses a server whose
certificate the mesh's authority did not sign, so its token never reaches an impostor."""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.channels import ChannelPool, Transport
from matcha.runtime.client import open_channel
from matcha.runtime.settings import ServiceSettings
from tests.review.conftest import draft
from tests.support import free_port

REVIEW_SERVICE = "matcha.review.v1.ReviewService"


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(self, name: str, directory: Path) -> tuple[Path, Path]:
        """A certificate for `name`, valid for 127.0.0.1 and localhost; its (certificate, key) files."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            _builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), self.certificate.subject, key.public_key()
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        certificate_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
        certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return certificate_file, key_file

    def write(self, directory: Path) -> Path:
        path = directory / f"{self.certificate.subject.rfc4514_string()}.pem"
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    mesh, rogue = Authority.create("mesh-ca"), Authority.create("rogue-ca")
    files = {"ca": mesh.write(directory), "rogue_ca": rogue.write(directory)}
    files["server_cert"], files["server_key"] = mesh.issue("review", directory)
    files["client_cert"], files["client_key"] = mesh.issue("conductor", directory)
    files["rogue_cert"], files["rogue_key"] = rogue.issue("intruder", directory)
    return files


@pytest.fixture
async def tls_review(pki, review_settings, start_review):
    settings = review_settings(
        tls_ca_file=pki["ca"],
        tls_cert_file=pki["server_cert"],
        tls_key_file=pki["server_key"],
        health_listen_address="127.0.0.1:0",
    )
    async with start_review(settings) as (server, _):
        yield server


@pytest.fixture
async def review_over(tls_review, issuer, tenant):
    """`review_over(transport)`: a ReviewService stub of the tenant's author, over that transport."""
    channels = []

    def make(transport: Transport) -> review_pb2_grpc.ReviewServiceStub:
        token = issuer.mint(subject="planner", tenant=tenant, roles=["author", "analyst"])
        channels.append(open_channel(f"127.0.0.1:{tls_review.port}", token=token, transport=transport))
        return review_pb2_grpc.ReviewServiceStub(channels[-1])

    yield make
    for channel in channels:
        await channel.close()


async def _items(stub) -> list[str]:
    return [item.id for item in (await stub.List(review_pb2.ListRequest())).items]


async def test_only_clients_with_a_certificate_of_the_mesh_reach_the_service(review_over, pki):
    member = Transport.from_files(ca=pki["ca"], certificate=pki["client_cert"], key=pki["client_key"])
    attackers = {
        "plaintext": Transport(),
        "TLS without a client certificate": Transport.from_files(ca=pki["ca"], certificate=None, key=None),
        "a certificate of another authority": Transport.from_files(
            ca=pki["ca"], certificate=pki["rogue_cert"], key=pki["rogue_key"]
        ),
    }
    for name, transport in attackers.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await review_over(transport).Submit(draft(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, name
    # What the service holds: nothing the attackers sent; the mesh's client is served.
    legitimate = review_over(member)
    assert await _items(legitimate) == []
    submitted = (await legitimate.Submit(draft(), timeout=5)).item
    assert await _items(legitimate) == [submitted.id]


async def test_the_channel_layer_checks_health_over_mutual_tls(tls_review, pki):
    member = Transport.from_files(ca=pki["ca"], certificate=pki["client_cert"], key=pki["client_key"])
    address = f"127.0.0.1:{tls_review.port}"
    served, plaintext = ChannelPool(transport=member), ChannelPool()
    try:
        assert await served.health(address, REVIEW_SERVICE, 5) == "SERVING"
        assert await plaintext.health(address, REVIEW_SERVICE, 2) == "UNREACHABLE"
    finally:
        await served.close()
        await plaintext.close()


class _Recorder(grpc.GenericRpcHandler):
    """An impostor's server: records the metadata of every call that reaches it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def service(self, handler_call_details):
        self.seen.append(dict(handler_call_details.invocation_metadata))
        return None


async def test_the_plaintext_health_port_serves_health_and_nothing_else(tls_review, review_over):
    """Probes that cannot speak TLS read health there; an attacker calling the service there reaches nothing."""
    health_address = f"127.0.0.1:{tls_review.health_port}"
    probe = ChannelPool()
    try:
        assert await probe.health(health_address, REVIEW_SERVICE, 5) == "SERVING"
        submit = probe.method(
            health_address,
            "/matcha.review.v1.ReviewService/Submit",
            review_pb2.SubmitRequest.SerializeToString,
            review_pb2.SubmitResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(draft(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await probe.close()


async def test_a_client_of_the_mesh_sends_nothing_to_a_server_of_another_authority(pki, issuer, tenant):
    recorder = _Recorder()
    impostor = grpc.aio.server()
    impostor.add_generic_rpc_handlers((recorder,))
    port = impostor.add_secure_port(
        f"127.0.0.1:{free_port()}",
        grpc.ssl_server_credentials([(pki["rogue_key"].read_bytes(), pki["rogue_cert"].read_bytes())]),
    )
    await impostor.start()
    try:
        member = Transport.from_files(ca=pki["ca"], certificate=pki["client_cert"], key=pki["client_key"])
        token = issuer.mint(subject="conductor", tenant=tenant, roles=["author"])
        channel = open_channel(f"127.0.0.1:{port}", token=token, transport=member)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await review_pb2_grpc.ReviewServiceStub(channel).Submit(draft(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        await channel.close()
        # The token never reached the impostor: no call got past the handshake.
        assert recorder.seen == []
    finally:
        await impostor.stop(0)


def test_a_certificate_without_its_key_stops_the_process_with_the_variables_named(pki):
    with pytest.raises(ValidationError, match="MATCHA_TLS_CERT_FILE and MATCHA_TLS_KEY_FILE"):
        ServiceSettings(database_url="postgresql://x/y", tls_cert_file=pki["server_cert"])
