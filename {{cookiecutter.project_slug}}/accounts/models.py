from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The project's user model, in place from the first migration so it can grow later.

    Swapping the user model after the first `migrate` is painful; adding fields here is not.
    """
