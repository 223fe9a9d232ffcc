//! Any text handed to the flow loader, as a flow file or as a prompts file, yields a checked
//! flow or a list of problems, never a panic. Every problem in the text points inside it, and
//! a flow that loads only leads to states it has.
//!
//! The input is tried twice: as a flow file, checked against the built-in prompts and grammars,
//! and as a prompts file, which when it parses is checked against the built-in hotline flow.
#![no_main]

use std::sync::OnceLock;

use dialogs::flow::{Flow, FlowError, GrammarSet, Prompts, Target, Vars};
use libfuzzer_sys::fuzz_target;

/// The hotline flow and prompts, the same text `Flow::builtin` compiles in.
const HOTLINE_FLOW: &str = include_str!("../../dialogs/flows/hotline.toml");
const HOTLINE_PROMPTS: &str = include_str!("../../dialogs/flows/prompts.tsv");

const FLOW_ORIGIN: &str = "fuzz.toml";
const PROMPTS_ORIGIN: &str = "fuzz.tsv";

/// The built-in prompts and grammars, parsed once (they are cloned for every input, as
/// `Flow::parse` takes them by value).
fn builtin() -> &'static (Prompts, GrammarSet) {
    static BUILTIN: OnceLock<(Prompts, GrammarSet)> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let prompts = Prompts::parse(HOTLINE_PROMPTS, "prompts.tsv")
            .unwrap_or_else(|p| panic!("the built-in prompts do not parse: {p:?}"));
        let grammars = GrammarSet::builtin()
            .unwrap_or_else(|e| panic!("the built-in grammars do not load: {e}"));
        (prompts, grammars)
    })
}

/// Every problem reported in `origin` lies within `text` (line 0 means the whole file).
fn assert_inside(problems: &[dialogs::flow::Problem], origin: &str, text: &str) {
    let lines: Vec<&str> = text.split('\n').collect();
    for p in problems.iter().filter(|p| p.origin == origin && p.line > 0) {
        let line = lines.get(p.line - 1);
        assert!(line.is_some(), "problem past the last line: {p}");
        let width = line.map_or(0, |l| l.chars().count());
        assert!(
            p.column <= width + 1,
            "problem past the end of its line: {p}"
        );
    }
}

/// Every target and flow-wide state of a loaded flow is one of its states.
fn assert_closed(flow: &Flow) {
    let n = flow.states.len();
    let s = &flow.settings;
    for id in [s.start, s.main, s.emergency, s.operator]
        .into_iter()
        .chain(s.language)
    {
        assert!(id < n, "flow-wide state {id} of {n}");
    }
    for state in &flow.states {
        for target in state
            .on
            .values()
            .chain(state.next.iter())
            .chain(state.otherwise.iter())
        {
            if let Target::State(id) = target {
                assert!(*id < n, "state {} leads to state {id} of {n}", state.name);
            }
        }
        assert_eq!(
            flow.state_named(&state.name)
                .map(|id| &flow.states[id].name),
            Some(&state.name)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (prompts, grammars) = builtin();

    // As a flow file.
    match Flow::parse(&text, FLOW_ORIGIN, prompts.clone(), grammars.clone()) {
        Ok(flow) => assert_closed(&flow),
        Err(FlowError { problems }) => {
            assert!(!problems.is_empty(), "an error without problems");
            assert_inside(&problems, FLOW_ORIGIN, &text);
        }
    }

    // As a prompts file.
    match Prompts::parse(&text, PROMPTS_ORIGIN) {
        Ok(fuzzed) => {
            for prompt in fuzzed.iter() {
                for lang in dialogs::flow::prompts::LOCALES {
                    let _ = prompt.template(lang).fill(&Vars::new());
                }
            }
            if let Ok(flow) = Flow::parse(HOTLINE_FLOW, "hotline.toml", fuzzed, grammars.clone()) {
                assert_closed(&flow);
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "an error without problems");
            assert_inside(&problems, PROMPTS_ORIGIN, &text);
        }
    }
});
