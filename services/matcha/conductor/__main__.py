"""`python -m matcha.conductor`: the conductor process."""

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.runtime.main import run_service

if __name__ == "__main__":
    run_service("conductor", ConductorSettings, build_conductor_service)
