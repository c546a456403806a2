from django.contrib import admin

from campaigns.models import (
    Experiment,
    ExperimentVariant,
    ExperimentVersion,
    Placement,
    Promotion,
    SeasonalBoost,
    SeasonalSuggestion,
    Strategy,
)

# Read-only views: every change goes through campaigns.services, which audits it and
# moves the campaigns version that serving polls.


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Placement)
class PlacementAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name", "kind", "shop", "default_strategy")
    list_filter = ("shop", "kind")


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    list_display = ("name", "shop", "action", "status", "priority", "starts_at", "ends_at")
    list_filter = ("shop", "status", "action")


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyAdmin):
    list_display = ("name", "shop", "placement", "status", "version", "started_at", "stopped_at")
    list_filter = ("shop", "status")


for model in (Strategy, SeasonalBoost, SeasonalSuggestion, ExperimentVariant, ExperimentVersion):
    admin.site.register(model, ReadOnlyAdmin)
