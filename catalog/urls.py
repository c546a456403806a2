from django.urls import path

from catalog import apis, views

api_urlpatterns = [
    path("events", apis.EventsApi.as_view(), name="events"),
    path("products", apis.ProductsApi.as_view(), name="products"),
    path("products/<path:sku>", apis.ProductDeleteApi.as_view(), name="product-delete"),
    path("shoppers/<path:shopper_id>", apis.ShopperEraseApi.as_view(), name="shopper-erase"),
]

# Console pages of the catalog, mounted by recsite/console_urls.py under
# /console/<shop_slug>/ in the "console" namespace.
console_urlpatterns = [
    path("catalog/", views.products, name="products"),
    path("catalog/products/<path:sku>", views.product_detail, name="product"),
    path("data/", views.data_overview, name="data"),
    path("data/rejections/", views.rejections, name="rejections"),
    path("data/uploads/", views.uploads_page, name="uploads"),
    path("data/uploads/<int:job_id>/", views.upload_detail, name="upload"),
    path("integration/keys/", views.api_keys, name="api-keys"),
    path("integration/keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
    path("integration/keys/<int:key_id>/origins/", views.api_key_origins, name="api-key-origins"),
    path("shoppers/", views.shoppers, name="shoppers"),
    path("shoppers/erase/", views.shopper_erase_view, name="shopper-erase"),
    path("audit/", views.audit_log, name="audit"),
    path("members/", views.members, name="members"),
    path("members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path("settings/", views.shop_settings, name="settings"),
]
