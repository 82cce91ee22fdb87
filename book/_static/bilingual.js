// BERT, Annotated: make the article header's two sidebar buttons work.
// pydata-sphinx-theme and sphinx-book-theme attach their handlers to the first ".primary-toggle" and
// ".secondary-toggle" of the page, which are the buttons of the top bar (hidden under sphinx-book-theme);
// the buttons a reader sees, in the article header, had no handler. A click on one now clicks the first.
document.addEventListener("DOMContentLoaded", () => {
  if (window.bilingualSidebarButtons) {
    return; // the script is on the page twice
  }
  window.bilingualSidebarButtons = true;
  for (const selector of [".primary-toggle", ".secondary-toggle"]) {
    const [handled, ...others] = document.querySelectorAll(selector);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        handled.click();
      });
    }
  }
});
