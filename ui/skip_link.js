// "Skip to the question box": the first thing Tab reaches (put before the app's root, so before the sidebar), hidden
// until focused; it moves the focus to the chat input (or to the main area when the Chat tab is not open).
export default function () {
  if (document.getElementById("la-skip")) return;
  const link = document.createElement("a");
  link.id = "la-skip";
  link.href = "#";
  link.textContent = "Skip to the question box";
  link.addEventListener("click", (event) => {
    event.preventDefault();
    const box = document.querySelector('[data-testid="stChatInputTextArea"]')
      || document.querySelector('[data-testid="stMain"]');
    if (box) box.focus();
  });
  document.body.insertBefore(link, document.body.firstChild);
}
