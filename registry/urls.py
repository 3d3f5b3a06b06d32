from django.urls import path

from . import pages

app_name = "registry"

urlpatterns = [
    path("models/", pages.models_page, name="models"),
    path("models/<int:number>/promote/", pages.promote_view, name="promote"),
    path("models/rollback/", pages.rollback_view, name="rollback"),
    path("models/<int:number>/report/", pages.report_page, name="report"),
    path("models/<int:number>/report/<str:name>", pages.report_file, name="report-file"),
]
