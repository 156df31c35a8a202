"""Runnable tour of the Python API on the bundled seed corpus, fully offline.

    python examples/quickstart.py [HOME]
"""

from __future__ import annotations

import sys
import tempfile

from assistant import Assistant
from assistant.api import DEMO_CORPUS
from assistant.retrieve import Filters

home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="litassist-")
lib = Assistant(home=home)
report = lib.ingest([DEMO_CORPUS])
print(f"ingested {report.new} new papers ({report.chunks_embedded} chunks) into {home}")

for hit in lib.search("distributed training on GPU clusters", k=3, filters=Filters(year_min=2018)):
    print(f"{hit.score:.3f}  {hit.title}  ({hit.paper.year or hit.paper.date})")

answer = lib.ask("How can deep learning training scale across many GPUs?")
print(answer.text)
print("provider:", answer.provider, "| cited:", [c.paper_id for c in answer.citations])

follow_up = lib.ask(
    "Which of them reports results on ImageNet?",
    history=[{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}],
)
print(follow_up.standalone_question)
for event in lib.stream("What is CMFQ?"):
    if event.kind == "step":
        print("step:", event.step.tool, event.step.args)
    elif event.kind == "final":
        print(event.answer.text)
