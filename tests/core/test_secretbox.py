from apps.core import secretbox


def test_encrypt_hides_the_value_and_decrypt_restores_it():
    token = secretbox.encrypt("sk-live-123")

    assert "sk-live-123" not in token
    assert token != secretbox.encrypt("sk-live-123")  # a fresh IV each time
    assert secretbox.decrypt(token) == "sk-live-123"
