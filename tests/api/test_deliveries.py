import pytest

from apps.runs.models import Run
from apps.threads.models import Delivery
from apps.threads.services import message_post
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_release_lets_a_held_delivery_through_and_dispatches_it(
    owner_api, held_delivery, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.post(f"/api/v1/deliveries/{held_delivery.pk}/release/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["state"], body["reason"]) == (
        held_delivery.pk,
        "pending",
        "Released by a human.",
    )
    delivery = Delivery.objects.get(pk=held_delivery.pk)
    assert not delivery.held
    run = Run.objects.get(agent=agent)
    assert delivery.run == run


def test_releasing_a_delivery_that_is_not_held_is_409(api, owner, thread, agent):
    message = message_post(actor=owner, thread=thread, body="@coder hi")
    [delivery] = message.deliveries.all()

    response = api.post(f"/api/v1/deliveries/{delivery.pk}/release/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_held"


def test_viewers_cannot_release(viewer, held_delivery):
    response = api_client_for(viewer.user).post(f"/api/v1/deliveries/{held_delivery.pk}/release/")

    assert response.status_code == 403
    assert Delivery.objects.get(pk=held_delivery.pk).held


def test_an_unknown_delivery_is_404(api):
    assert api.post("/api/v1/deliveries/999999/release/").status_code == 404
