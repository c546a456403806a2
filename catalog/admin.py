from django.contrib import admin

from catalog.models import ApiKey, AuditEntry, Category, Event, Membership, Product, Rejection, Shop, Shopper


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "currency", "created_at")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "title", "shop", "price", "in_stock", "active", "updated_at")
    list_filter = ("shop", "active", "in_stock")
    search_fields = ("sku", "title")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "shop", "sku", "ts", "received_at")
    list_filter = ("shop", "type")
    raw_id_fields = ("shopper", "product")


admin.site.register(Category)
admin.site.register(Shopper)
admin.site.register(Rejection)
admin.site.register(ApiKey)
admin.site.register(Membership)
admin.site.register(AuditEntry)
