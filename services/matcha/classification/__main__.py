"""`python -m matcha.classification`: the classification service process."""

from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.runtime.main import run_service

if __name__ == "__main__":
    run_service("classification", ClassificationSettings, build_classification_service)
