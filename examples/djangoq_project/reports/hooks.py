from .models import HookCall


def store_result(task):
    HookCall.objects.create(
        task_id=task.id.hex if hasattr(task.id, "hex") else str(task.id),
        func=task.func,
        success=task.success,
        result=str(task.result),
        group=task.group,
    )
