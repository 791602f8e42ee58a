// The left sidebar's button. The page has two buttons of class primary-toggle: the navbar's icon,
// which this theme hides, and the visible one in the article's header. pydata-sphinx-theme 0.17.1
// and sphinx-book-theme 1.3.0 listen on the first only (document.querySelector), so a click on the
// visible one did nothing: below 992 px the sidebar, and the parts' captions in it, could not be
// opened. Every other such button hands its click to the first, which both themes handle.
document.addEventListener("DOMContentLoaded", function () {
  var toggles = document.querySelectorAll(".primary-toggle");
  for (var i = 1; i < toggles.length; i++) {
    toggles[i].addEventListener("click", function (event) {
      event.preventDefault();
      event.stopPropagation();
      toggles[0].click();
    });
  }
});
