"""The e2e tests drive the same controller process as the integration tests."""

from tests.integration.conftest import controller, crds

__all__ = ["controller", "crds"]
