"""Handlers for the "moved to another file" hash test (copy of moved_a.py)."""


async def first(data):
    return data.input


async def second(data):
    await data.async_set_state("out", data.input)


def is_big(data):
    return data.value > 10
