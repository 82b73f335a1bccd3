/* The public page behind a satisfaction survey campaign's link (signed-link.js does the link, the language, the
   sending and the messages): the overall score and the campaign's factors (the seeds': on-time, damage, price,
   staff, complaint handling), 1-5 each, texts satisfaction.* in i18n.js. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  SignedLinkPage.scale($("sat-overall"), "overall", { required: true });
  SignedLinkPage.open({
    ids: "sat",
    keys: "satisfaction.",
    api: "/api/v1/satisfaction-survey-links",
    loaded(page) {
      $("sat-factors").replaceChildren(...page.factors.map((factor) => {
        const fieldset = document.createElement("fieldset");
        fieldset.id = `sat-factor-${factor}`;
        const legend = document.createElement("legend");
        legend.dataset.factor = factor;
        fieldset.append(legend);
        SignedLinkPage.scale(fieldset, factor);
        return fieldset;
      }));
    },
    render(t, page) {
      $("sat-overall-question").textContent = t("overall");
      document.querySelectorAll("#sat-factors legend").forEach((legend) => { legend.textContent = t("factor." + legend.dataset.factor); });
      $("sat-intro").textContent = page ? t("intro").replace("{c}", page.campaign_name) : "";
    },
    answer(page) {
      const overall = SignedLinkPage.chosen("overall");
      if (!overall) return null;
      const factors = {};
      for (const factor of page.factors) {
        const chosen = SignedLinkPage.chosen(factor);
        if (chosen) factors[factor] = Number(chosen.value);  // a factor left out is not answered
      }
      return { score: Number(overall.value), factors };
    }
  });
})();
