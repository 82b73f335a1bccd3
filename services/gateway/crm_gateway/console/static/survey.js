/* The public survey page behind the link in the resolution message (signed-link.js does the link, the language, the
   sending and the messages): the complaint's facts and one score 1-5 with its words, texts survey.* in i18n.js. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  SignedLinkPage.scale($("survey-scores"), "score", { required: true, words: true });
  SignedLinkPage.open({
    ids: "survey",
    keys: "survey.",
    api: "/api/v1/survey",
    render(t, page, lang) {
      $("survey-question").textContent = t("question");
      $("survey-intro").textContent = page ? t("intro").replace("{n}", page.complaint_number) : "";
      $("survey-facts").hidden = !page;
      $("survey-number-label").textContent = t("number");
      $("survey-resolved-label").textContent = t("resolved_at");
      $("survey-outcome-label").textContent = t("outcome");
      if (page) {
        const fmtTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
        $("survey-number").textContent = page.complaint_number;
        $("survey-resolved").textContent = page.resolved_at ? fmtTime.format(new Date(page.resolved_at)) : "–";
        $("survey-outcome").textContent = page.outcome || "–";  // the agent's own words, as written
      }
      for (let score = 1; score <= 5; score++) $(`score-${score}-text`).textContent = t("score." + score);
    },
    answer() {
      const chosen = SignedLinkPage.chosen("score");
      return chosen ? { score: Number(chosen.value) } : null;
    }
  });
})();
