"""The live path's resolver: the registry's choice per site, refreshed off the event loop; the
shipped folder while the registry is empty."""

from __future__ import annotations

import asyncio
import time

import pytest

from live.model_choice import ModelResolver
from registry import services
from registry.models import Activation, ModelVersion

from .conftest import artifact_copy

pytestmark = pytest.mark.django_db(transaction=True)


async def until_changed(resolver: ModelResolver, site_id, number, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while (choice := resolver.current(site_id)) is None or choice.number != number:
        assert time.monotonic() - started < timeout, f"still {choice}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def test_the_resolver_follows_promotions_within_its_refresh(store, site, tmp_path):
    v2 = services.register_version(artifact_copy(tmp_path / "v2", threshold=0.5))
    v1_dir = ModelVersion.objects.get(number=1).model_dir

    async def main():
        resolver = ModelResolver(refresh_s=0.2, embedded=False)
        await resolver.ready()
        first = resolver.current(site.pk)
        assert first.number == 1 and first.path == v1_dir
        await asyncio.to_thread(services.promote, v2, site=site.pk)
        seconds = await until_changed(resolver, site.pk, 2, timeout=5.0)
        assert resolver.current(None).number == 1  # other sites keep the global version
        assert resolver.current(site.pk).features_key == first.features_key
        await asyncio.to_thread(services.rollback, site=site.pk)
        await until_changed(resolver, site.pk, 1)
        return seconds

    seconds = asyncio.run(main())
    assert seconds < 5.0


def test_an_empty_registry_falls_back_to_the_shipped_folder(settings):
    Activation.objects.all().delete()

    async def main():
        resolver = ModelResolver(refresh_s=0.2, embedded=False)
        await resolver.ready()
        return resolver.current(None)

    choice = asyncio.run(main())
    assert choice.number is None and choice.path == settings.EYESCREAM_MODEL_DIR
