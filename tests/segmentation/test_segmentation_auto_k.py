"""k chosen by stability across resamples, within a preferred range and above a minimum share."""

import grpc
import pytest

from matcha.runtime.client import error_details
from matcha.segmentation.v1 import segmentation_pb2 as pb

from .conftest import ingest_cdnow

TRANSFORMS = {
    "frequency": pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
    "monetary": pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
}


async def test_stability_chooses_k_in_the_preferred_range_and_says_why(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 2_000)
    config = pb.KMeansConfig(
        criterion=pb.K_CRITERION_STABILITY, min_share=0.05, preferred_k_min=3, preferred_k_max=6, k_max=8
    )
    built = (
        await stub.BuildSegmentation(
            pb.BuildSegmentationRequest(name="auto", kmeans=config, transforms=TRANSFORMS, seed=3)
        )
    ).segmentation
    k = len(built.segments)
    assert 3 <= k <= 6
    scores = {score.k: score for score in built.k_scores}
    assert sorted(scores) == list(range(2, 9))
    assert scores[k].smallest_share >= 0.05
    eligible = [s for s in scores.values() if 3 <= s.k <= 6 and s.smallest_share >= 0.05]
    assert scores[k].stability >= max(s.stability for s in eligible) - 0.02
    assert all(s.k <= k for s in eligible if s.stability >= max(e.stability for e in eligible) - 0.02)
    assert built.k_reason.startswith(f"k = {k}: the largest k as stable")
    assert "k 3 to 6" in built.k_reason and "at least 5%" in built.k_reason


async def test_bad_choice_parameters_are_refused(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 50)
    config = pb.KMeansConfig(criterion=9, min_share=0.7, preferred_k_min=1, preferred_k_max=20)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="bad", kmeans=config))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(refused.value).field_violations) == {
        "kmeans.criterion",
        "kmeans.min_share",
        "kmeans.preferred_k_min",
        "kmeans.preferred_k_max",
    }
