"""jupyter_kernel_test (the upstream conformance suite) configured for the pixart-ts TypeScript kernel.

Run after installing the kernel spec (node dist/kernel/src/install.js):
    .venv/bin/python test/kernel/test_conformance.py
`npm test` runs it through test/kernel/conformance.test.ts with a kernel spec written to a temporary JUPYTER_PATH
(PIXART_KERNEL_NAME, PIXART_DISPLAY_MODULE say which kernel and which build of the display module to use).
"""
import json
import os
import pathlib
import sys
import unittest

import jupyter_kernel_test

KERNEL_NAME = os.environ.get("PIXART_KERNEL_NAME", "pixart-ts")
REPO = pathlib.Path(__file__).resolve().parents[2]
DISPLAY_MODULE = os.environ.get("PIXART_DISPLAY_MODULE", str(REPO / "dist" / "src" / "display" / "display"))
IMPORT_DISPLAY = f"import {{ display, clearOutput }} from {json.dumps(DISPLAY_MODULE)};\n"


class PixartTsKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("something went wrong")'

    completion_samples = [
        {"text": "Math.ab", "matches": {"abs"}},
        {"text": "const completionTarget = 1;\ncompletionTar", "matches": {"completionTarget"}},
    ]
    complete_code_samples = ["1 + 2", "const x = 1;", "function f() {\n  return 1;\n}"]
    incomplete_code_samples = ["function f() {", "const a = [1, 2,", "if (true) {\n  console.log(1);"]
    invalid_code_samples = ["const = 5;", "let x = );", "}"]

    code_page_something = "?Math.max"
    code_generate_error = 'throw new Error("boom")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "'py' + 'thon'", "result": "'python'"},
        {"code": "[1, 2, 3].length", "result": "3"},
        {
            "code": "({ [Symbol.for('Jupyter.display')]: () => ({ 'text/html': '<b>rich</b>', 'text/plain': 'rich' }) })",
            "mime": "text/html",
            "result": "<b>rich</b>",
        },
    ]
    code_display_data = [
        {"code": IMPORT_DISPLAY + "display({ 'image/svg+xml': '<svg xmlns=\"http://www.w3.org/2000/svg\"/>' });", "mime": "image/svg+xml"},
        {"code": "import * as tslab from 'tslab';\ntslab.display.html('<i>tslab</i>');", "mime": "text/html"},
    ]
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "Math.max"
    code_clear_output = IMPORT_DISPLAY + "clearOutput();"

    def execute_helper(self, code, *args, **kwargs):
        """The upstream helper, plus the kernel's error text on stderr when a sample fails unexpectedly."""
        reply, outputs = super().execute_helper(code, *args, **kwargs)
        content = reply["content"]
        if content["status"] != "ok" and code != self.code_generate_error:
            print(f"\nunexpected {content['status']} for {code!r}: {content.get('ename')}: {content.get('evalue')}", file=sys.stderr)
        return reply, outputs


class PixartTsIopubWelcomeTests(jupyter_kernel_test.IopubWelcomeTests):
    kernel_name = KERNEL_NAME
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main(verbosity=2)
