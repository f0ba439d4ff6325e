"""E-mail: templates per locale, rendering, SMTP or .eml delivery, consent and unsubscribe."""
