"""Knowing that the load balancer is draining this task, before ECS says so.

On scale-in ECS first deregisters the task from its target group and waits, for up to the
deregistration delay, until the load balancer has no connection left to it; only then does
it send SIGTERM (docs: "Optimize load balancer connection draining parameters for Amazon
ECS"). An open SSE stream is a connection that never ends by itself, so a task that waited
for SIGTERM would keep its streams until the delay ran out and the load balancer cut them.
So the task asks the load balancer about itself (``DescribeTargetHealth``) every few
seconds, and drains its streams as soon as its target is ``draining``; its clients
reconnect at once to the tasks still registered, the load balancer sees no connection left
and completes the deregistration early, and SIGTERM follows.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

# ELB TargetHealth.State values (ALB). A registered target is one of REGISTERED; a target
# being taken out is "draining" (or "unhealthy.draining") for the deregistration delay,
# then "unused". A task is "unused" too before ECS has registered it, while it starts.
REGISTERED = frozenset({"initial", "healthy", "unhealthy", "unavailable"})
DRAINING = frozenset({"draining", "unhealthy.draining"})


class TargetState:
    """What the target's states so far say: is the load balancer taking this task out?

    ``draining`` says so at once. ``unused`` says so only after the target was seen
    registered (the deregistration completed between two polls, or an emulator skips the
    draining state); before that it is a task still starting.
    """

    def __init__(self) -> None:
        self.seen_registered = False

    def leaving(self, state: str | None) -> bool:
        """Record ``state`` (None: this target was not in the answer); True once leaving."""
        if state in REGISTERED:
            self.seen_registered = True
            return False
        if state in DRAINING:
            return True
        return state == "unused" and self.seen_registered


def task_address(metadata_uri: str, timeout_s: float = 2.0) -> str:
    """The task's private IPv4 address (its target id in an ``ip`` target group), from the
    ECS container metadata endpoint v4 (``ECS_CONTAINER_METADATA_URI_V4``)."""
    with urllib.request.urlopen(metadata_uri, timeout=timeout_s) as response:
        metadata = json.loads(response.read())
    return address_of(metadata)


def address_of(metadata: dict[str, Any]) -> str:
    """The first IPv4 address of the container's first network (awsvpc: the task ENI)."""
    for network in metadata.get("Networks") or []:
        for address in network.get("IPv4Addresses") or []:
            return str(address)
    raise ValueError("the container metadata names no IPv4 address")


def state_of(response: dict[str, Any], address: str, port: int) -> str | None:
    """This target's state in a ``DescribeTargetHealth`` answer (None if it is absent)."""
    for description in response.get("TargetHealthDescriptions", []):
        target = description.get("Target", {})
        if target.get("Id") == address and int(target.get("Port", port)) == port:
            state = description.get("TargetHealth", {}).get("State")
            return None if state is None else str(state)
    return None


def describe_self(elbv2: Any, target_group_arn: str, address: str, port: int) -> dict[str, Any]:
    """This task's entry in its target group (one ``DescribeTargetHealth`` call)."""
    answer: dict[str, Any] = elbv2.describe_target_health(
        TargetGroupArn=target_group_arn, Targets=[{"Id": address, "Port": port}]
    )
    return answer
