"""`python -m matcha.review`: the review service process."""

from matcha.review.app import build_review_service
from matcha.review.settings import ReviewSettings
from matcha.runtime.main import run_service

if __name__ == "__main__":
    run_service("review", ReviewSettings, build_review_service)
