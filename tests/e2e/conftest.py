"""e2e tier: the whole local stack (synth, moto deploy, in-process handlers, loopback API, sandboxes)."""

from __future__ import annotations

import pytest

from local.sandboxes.base import Faults
from local.stack import LocalStack, Sandboxes


@pytest.fixture(scope="package")
def stack():
    sandboxes = Sandboxes.create(erp_faults=Faults(seed=3), psa_faults=Faults(seed=4))
    local = LocalStack(sandboxes=sandboxes).start()
    yield local
    local.stop()


@pytest.fixture(autouse=True)
def _calm_sandboxes(stack):
    """Each test sets the faults it is about; none leak into the next."""
    yield
    for sandbox in stack.sandboxes.all().values():
        sandbox.set_faults(Faults())
