"""Forms of the console shell: the TOTP token, and the QR code that sets up the device."""

from base64 import b32encode
from typing import Any

import segno
from django import forms
from django.core.exceptions import ValidationError
from django_otp.plugins.otp_totp.models import TOTPDevice


class TokenForm(forms.Form):
    token = forms.CharField(
        label="6-digit code",
        min_length=6,
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]*", "autofocus": True}
        ),
        help_text="From your authenticator app.",
    )

    def __init__(self, *args: Any, device: TOTPDevice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_token(self) -> str:
        token = "".join(self.cleaned_data["token"].split())
        # verify_token is throttled by django-otp: repeated failures slow down further tries.
        if not token.isdigit() or not self.device.verify_token(token):
            raise ValidationError("That code is not valid. Check the time on your phone and try the current code.")
        return token


def device_secret(device: TOTPDevice) -> str:
    """The device key as an authenticator app wants it typed in: base32, no padding."""
    return b32encode(device.bin_key).decode().rstrip("=")


def two_factor_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (no style attributes: CSP-safe)."""
    qr = segno.make(device.config_url, error="m")
    return qr.svg_inline(scale=5, border=2, dark="#111827", light="#ffffff", title="QR code for your authenticator app")
