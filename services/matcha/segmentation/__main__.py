"""`python -m matcha.segmentation`: the segmentation service process."""

from matcha.runtime.main import run_service
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings

if __name__ == "__main__":
    run_service("segmentation", SegmentationSettings, build_segmentation_service)
