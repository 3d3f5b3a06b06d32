from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("feedback/export.zip", views.export_download, name="export"),
    path("feedback/retrain/", views.retrain, name="retrain"),
]
