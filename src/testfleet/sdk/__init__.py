"""What a test plan instance imports: its run environment, outcome recording and the sync
service's client. Installs and imports without the hub's dependencies.

    from testfleet.sdk import invoke_map

    def ping(env, ctx):
        ctx.sync.signal_and_wait("ready", env.test_instance_count)

    invoke_map({"ping": ping})
"""

from testfleet.sdk.blocking import BlockingSubscription, BlockingSync
from testfleet.sdk.invoke import InitContext, invoke, invoke_map
from testfleet.sdk.runenv import RunEnv
from testfleet.sdk.sync import BarrierTimeout, Subscription, SyncClient, SyncError

__all__ = [
    "BarrierTimeout",
    "BlockingSubscription",
    "BlockingSync",
    "InitContext",
    "RunEnv",
    "Subscription",
    "SyncClient",
    "SyncError",
    "invoke",
    "invoke_map",
]
