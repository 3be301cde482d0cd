"""Sending the outbox through its channels, at least once.

`deliver` sends every pending outbox entry, this run's and earlier runs' failures,
with retries and backoff within the run; what still fails stays pending for the next
run until it expires. It reads only the outbox (aimon.store.alerts), so a run that
sends nothing new still retries what earlier runs could not send.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aimon.config import Config
from aimon.errors import SendError
from aimon.store.alerts import AlertStore, utcnow
from aimon.tasks.alerts.channel_base import Channel, mask
from aimon.tasks.alerts.channels import build_channel

log = logging.getLogger("aimon.alerts")


@dataclass(frozen=True)
class DeliveryReport:
    sent: tuple[str, ...] = ()  # "route -> channel"
    failed: tuple[str, ...] = ()  # "route -> channel: error" (still pending, retried next run)
    expired: tuple[str, ...] = ()


def deliver(
    cfg: Config,
    astore: AlertStore,
    *,
    now: dt.datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every pending outbox entry (this run's and earlier runs' failures).

    Transient failures (connection refused, timeouts, 429, 5xx) are retried within the
    run with exponential backoff; whatever still fails stays pending, with its error,
    for the next run, until it expires. An entry is marked sent only after the channel
    accepted it, so a crash in between can re-send once (at least once), never lose."""
    acfg = cfg.alerts
    now = now or utcnow()
    owner = uuid.uuid4().hex
    # Long enough for every attempt with its backoff and timeouts; a run that dies
    # holding a lease frees the entry when it runs out.
    lease = dt.timedelta(seconds=acfg.send_attempts * (60 + acfg.retry_backoff_seconds * 2**acfg.send_attempts))
    built: dict[str, Channel] = dict(channels or {})
    sent, failed, expired = [], [], []
    down: dict[str, str] = {}  # channel -> error: not tried again in this run
    for e in astore.due():
        where = f"{e.route} -> {e.channel} ({e.window_start:%Y-%m-%d %H:%M} {e.granularity})"
        if e.expires_at is not None and now >= e.expires_at:
            astore.mark(e.outbox_id, "expired", attempts=e.attempts, error=e.last_error, now=now)
            expired.append(where)
            log.error("notification %s expired unsent after %d attempts: %s", where, e.attempts, e.last_error)
            continue
        if e.channel in down:
            # One run does not hammer a channel that just failed every retry; the
            # entry stays pending, untouched, for the next run.
            failed.append(f"{where}: not tried, {e.channel} failed earlier in this run")
            continue
        if not astore.claim(e.outbox_id, owner, now, lease):
            continue  # another run is sending it right now, or has just sent it
        attempts = e.attempts
        error: str | None = None
        transient = True
        try:
            ch = built.get(e.channel)
            if ch is None:
                if e.channel not in acfg.channels:
                    raise SendError(f"channel {e.channel!r} is no longer configured", transient=False)
                ch = built[e.channel] = build_channel(e.channel, acfg.channels[e.channel])
            for i in range(acfg.send_attempts):
                attempts += 1
                try:
                    ch.send(e.payload)
                    error = None
                    break
                except SendError as err:
                    error, transient = str(err), err.transient
                    if not err.transient or i == acfg.send_attempts - 1:
                        break
                    sleep(acfg.retry_backoff_seconds * 2**i)
        except SendError as err:
            error, transient = str(err), err.transient
        if error is None:
            astore.mark(e.outbox_id, "sent", attempts=attempts, now=utcnow())
            sent.append(where)
        else:
            error = mask(error, built.get(e.channel))
            astore.mark(e.outbox_id, "pending", attempts=attempts, error=error, now=utcnow())
            failed.append(f"{where}: {error}")
            if transient:
                down[e.channel] = error
            log.warning("notification %s not sent (attempt %d): %s", where, attempts, error)
    return DeliveryReport(tuple(sent), tuple(failed), tuple(expired))
