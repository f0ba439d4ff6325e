"""Points milestones fire once per threshold crossed, on lifetime earned points: 0 → 50
mails the 50 one, 99 nothing, 100 the 100 one; a jump 0 → 100 mails only the 100 one."""

from __future__ import annotations

from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program, order
from tests.email.mailbox import Inbox, jobs, smtp

__all__ = ["smtp"]

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "automations": [
        {
            "key": "milestones",
            "trigger": {"points_milestone": {"wallet": "points", "thresholds": [50, 100]}},
            "actions": [{"send_email": {"template": "milestone", "marketing": False}}],
        }
    ],
}
TEMPLATE = {
    "subject": "You passed {{ data.threshold }} points",
    "html": "<p>{{ data.threshold }} points, {{ data.lifetime_earned }} earned so far</p>",
    "text": "{{ data.threshold }} points",
}


def buy(api: Api, tenant_id: str, order_id: str, member: str, amount: str, at: str) -> None:
    api.now = at
    response = api.post("/v1/orders", json=order(order_id, member, amount))
    assert response.status_code == 201, response.text
    jobs(tenant_id, at)


def subjects(inbox: Inbox, member: str) -> list[str]:
    return [str(m["Subject"]) for m in inbox.to(f"{member}@example.com")]


def test_milestone_sequence(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    apply_program(api, PROGRAM)
    assert api.put("/v1/email-templates/milestone/en", json=TEMPLATE).status_code == 200
    api.put("/v1/members/a", json={"email": "a@example.com"})
    api.put("/v1/members/b", json={"email": "b@example.com"})
    tid = tenant[0]

    buy(api, tid, "a1", "a", "50", "2026-03-01T10:00:00Z")  # 0 -> 50
    assert subjects(smtp, "a") == ["You passed 50 points"]
    buy(api, tid, "a2", "a", "49", "2026-03-02T10:00:00Z")  # 50 -> 99
    assert subjects(smtp, "a") == ["You passed 50 points"]
    buy(api, tid, "a3", "a", "1", "2026-03-03T10:00:00Z")  # 99 -> 100
    assert subjects(smtp, "a") == ["You passed 50 points", "You passed 100 points"]
    buy(api, tid, "a4", "a", "500", "2026-03-04T10:00:00Z")  # past every threshold: nothing new
    assert len(subjects(smtp, "a")) == 2

    buy(api, tid, "b1", "b", "100", "2026-03-01T11:00:00Z")  # 0 -> 100 in one jump
    assert subjects(smtp, "b") == ["You passed 100 points"]
    buy(api, tid, "b2", "b", "10", "2026-03-02T11:00:00Z")
    assert subjects(smtp, "b") == ["You passed 100 points"]

    jobs(tid, "2026-03-05T00:00:00Z")  # dispatches the milestone events themselves
    events = api.get("/v1/domain-events?type=points.milestone_reached").json()["data"]
    reached = sorted((e["data"]["member_id"], e["data"]["threshold"]) for e in events)
    assert reached == [("a", 50), ("a", 100), ("b", 100)]


def test_spending_does_not_undo_a_milestone(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    """Lifetime earned never goes down when points are spent: no second 50 mail."""
    apply_program(api, PROGRAM)
    api.put("/v1/email-templates/milestone/en", json=TEMPLATE)
    api.put("/v1/members/a", json={"email": "a@example.com"})
    buy(api, tenant[0], "a1", "a", "60", "2026-03-01T10:00:00Z")
    adjustment = {"id": "spend-1", "amount": -40, "reason": "correction"}
    assert api.post("/v1/members/a/adjustments", json=adjustment).status_code == 201
    buy(api, tenant[0], "a2", "a", "20", "2026-03-02T10:00:00Z")  # balance 40, lifetime 80
    assert subjects(smtp, "a") == ["You passed 50 points"]
