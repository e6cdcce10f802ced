"""`python -m matcha.generation`: the generation service process."""

from matcha.generation.app import build_generation_service
from matcha.generation.settings import GenerationSettings
from matcha.runtime.main import run_service

if __name__ == "__main__":
    run_service("generation", GenerationSettings, build_generation_service)
