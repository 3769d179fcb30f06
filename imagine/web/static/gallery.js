// The gallery: copy a prompt, and ask before a delete (links posted in Discord stop working).
"use strict";
document.querySelectorAll("button.copy").forEach((button) => {
  button.addEventListener("click", async () => {
    const text = button.dataset.prompt || "";
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      // clipboard refused (no secure context): select the prompt for a manual copy
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied!";
    setTimeout(() => { button.textContent = "Copy prompt"; }, 1500);
  });
});
document.querySelectorAll("form.delete").forEach((form) => {
  form.addEventListener("submit", (event) => {
    const sure = window.confirm(
      "Delete this image for good? Links to it already posted in Discord will stop working.");
    if (!sure) event.preventDefault();
  });
});
