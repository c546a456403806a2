from django.contrib import admin

from recommender.models import ActiveModel, ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "shop", "kind", "status", "stage", "progress", "attempts", "created_at", "finished_at")
    list_filter = ("status", "kind", "shop")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "shop", "kind", "number", "status", "artifact_bytes", "created_at")
    list_filter = ("status", "kind", "shop")
    raw_id_fields = ("training_run",)


@admin.register(ActiveModel)
class ActiveModelAdmin(admin.ModelAdmin):
    list_display = ("shop", "kind", "version", "previous_version", "activated_at", "activated_by")
    raw_id_fields = ("version", "previous_version")
