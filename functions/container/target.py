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

# The state of a target the load balancer is taking out (ELB TargetHealth.State). Not
# ``unused``: a task is that too before ECS has registered it, while it starts.
LEAVING = "draining"


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


def is_leaving(response: dict[str, Any], address: str, port: int) -> bool:
    """Whether ``DescribeTargetHealth``'s answer says this target is draining. Anything
    else (initial, healthy, unhealthy: ECS replaces an unhealthy task itself; unused: not
    registered yet) keeps it serving."""
    for description in response.get("TargetHealthDescriptions", []):
        target = description.get("Target", {})
        if target.get("Id") == address and int(target.get("Port", port)) == port:
            return description.get("TargetHealth", {}).get("State") == LEAVING
    return False


def describe_self(elbv2: Any, target_group_arn: str, address: str, port: int) -> dict[str, Any]:
    """This task's entry in its target group (one ``DescribeTargetHealth`` call)."""
    answer: dict[str, Any] = elbv2.describe_target_health(
        TargetGroupArn=target_group_arn, Targets=[{"Id": address, "Port": port}]
    )
    return answer
