"""The privacy retention timer: erases resolved conversations older than `[privacy] erase_resolved_after_days`.

Runs in one process of the cluster (the app holds the `timer:privacy` lease around it); the erasing itself
is `InboxService.erase_resolved`, in batches until none is left.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from inbox.config import PrivacyConfig
from inbox.service import InboxService

log = logging.getLogger(__name__)


async def erase_due(service: InboxService, settings: PrivacyConfig) -> int:
    """Erase every resolved conversation past the retention period now; answers how many (0 when off)."""
    if settings.erase_resolved_after_days <= 0:
        return 0
    older_than = timedelta(days=settings.erase_resolved_after_days)
    total = 0
    while erased := await service.erase_resolved(older_than):
        total += erased
    if total:
        log.info("retention: erased %d resolved conversations older than %s", total, older_than)
    return total


async def run(service: InboxService, settings: PrivacyConfig) -> None:
    """Forever: erase what is due, then sleep `interval_seconds`; one failure is logged and the loop goes on."""
    if settings.erase_resolved_after_days <= 0:
        return
    while True:
        try:
            await erase_due(service, settings)
        except Exception:
            log.exception("retention: erasing resolved conversations failed")
        await asyncio.sleep(settings.interval_seconds)
