import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_the_custom_user_model_is_in_use_and_stores_users():
    user_model = get_user_model()
    assert user_model._meta.label == "accounts.User"
    user = user_model.objects.create_user("ada", password="correct horse battery staple")
    assert user_model.objects.get(pk=user.pk).check_password("correct horse battery staple")
