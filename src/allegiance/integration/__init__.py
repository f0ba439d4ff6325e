"""Ways data gets in and out: shop platform connectors and file import/export."""
