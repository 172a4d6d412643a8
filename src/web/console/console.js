// 函查 hancha 控制台: the few things a server-rendered page cannot do alone. Pages work without it.
"use strict";

// GB 11643-1999: the check character of an 18-character 公民身份号码.
function idCheckCharacter(first17) {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * weights[i];
  return "10X98765432"[sum % 11];
}

// What is wrong with an ID number as typed so far, or "" when nothing (yet).
function idProblem(value) {
  const id = value.trim().toUpperCase();
  if (id.length === 0) return "";
  if (!/^[0-9]{0,17}[0-9X]?$/.test(id)) return "只能是数字，最后一位可以是 X";
  if (id.length < 18) return "";
  if (idCheckCharacter(id.slice(0, 17)) !== id[17]) return "校验码不对：请核对号码 (check character)";
  return "";
}

document.addEventListener("DOMContentLoaded", () => {
  // ID fields: checked as they are typed; a form with a wrong ID is not sent
  for (const input of document.querySelectorAll("input[data-resident-id]")) {
    const note = document.createElement("span");
    note.className = "field-error";
    note.dataset.for = input.name;
    input.insertAdjacentElement("afterend", note);
    const check = () => {
      const problem = idProblem(input.value);
      note.textContent = problem;
      input.classList.toggle("invalid", problem !== "");
      input.setCustomValidity(problem);
      return problem === "";
    };
    input.addEventListener("input", check);
    input.form.addEventListener("submit", (event) => {
      if (!check() || input.value.trim().length !== 18) {
        if (input.value.trim().length !== 18) note.textContent = "身份证号码应为 18 位";
        event.preventDefault();
      }
    });
  }

  // Live progress: an element with data-poll fetches that JSON every 2 s and fills the
  // elements named by data-count="<key>" until the JSON says done
  for (const box of document.querySelectorAll("[data-poll]")) {
    const poll = async () => {
      try {
        const answer = await fetch(box.dataset.poll, { credentials: "same-origin" });
        if (answer.ok) {
          const figures = await answer.json();
          for (const cell of box.querySelectorAll("[data-count]")) {
            const value = figures[cell.dataset.count];
            if (value !== undefined) cell.textContent = value;
          }
          const bar = box.querySelector("progress");
          if (bar && figures.total) { bar.max = figures.total; bar.value = figures.total - figures.waiting; }
          if (figures.done) {
            box.classList.add("done");
            for (const note of box.querySelectorAll("[data-when-done]")) note.textContent = note.dataset.whenDone;
            return;
          }
        }
      } catch (_) { /* the next poll tries again */ }
      setTimeout(poll, 2000);
    };
    poll();
  }
});
