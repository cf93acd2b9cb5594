//! `lamb init`: flags (or, on a terminal, numbered questions with defaults in brackets, as
//! `sam init` asks them) become one [`init::Request`]; the engine in [`crate::init`] writes
//! the project, and this prints what was made and the commands to run next.

use std::io::IsTerminal;

use crate::Error;
use crate::cli::InitArgs;
use crate::commands::guided::{Ask, GuidedError, Terminal};
use crate::init::{self, Request, Source, templates};

/// What the questions settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picked {
    pub name: String,
    pub runtime: String,
    pub app_template: String,
    pub manager: Option<String>,
    pub architecture: String,
}

pub fn init(args: InitArgs) -> Result<(), Error> {
    let extra_context = init::extra_context(args.extra_context.as_deref())?;
    let architecture = args.architecture.clone().unwrap_or_else(|| "x86_64".to_string());
    let request = if let Some(location) = &args.location {
        Request {
            source: Source::Location(location.clone()),
            name: args.name.clone(),
            architecture,
            output_dir: args.output_dir.clone(),
            extra_context,
        }
    } else {
        let picked = match (&args.name, &args.runtime, &args.app_template) {
            (Some(name), Some(runtime), Some(app)) => Picked {
                name: name.clone(),
                runtime: runtime.clone(),
                app_template: app.clone(),
                manager: args.dependency_manager.clone(),
                architecture,
            },
            _ if args.no_interactive || !std::io::stdin().is_terminal() => {
                let missing: Vec<&str> = [
                    ("--name NAME", args.name.is_none()),
                    ("--runtime RUNTIME", args.runtime.is_none()),
                    ("--app-template TEMPLATE", args.app_template.is_none()),
                ]
                .into_iter()
                .filter_map(|(flag, missing)| missing.then_some(flag))
                .collect();
                return Err(init::InitError::MissingFlags { missing: missing.join(", ") }.into());
            }
            _ => {
                let mut term = Terminal::open()?;
                ask(&mut term, &args)?
            }
        };
        let choice = templates::choose(&picked.runtime, &picked.app_template, picked.manager.as_deref())?;
        Request {
            source: Source::BuiltIn(choice),
            name: Some(picked.name),
            architecture: picked.architecture,
            output_dir: args.output_dir.clone(),
            extra_context,
        }
    };
    let created = init::create(&request)?;
    print_summary(&request, &created);
    Ok(())
}

fn print_summary(req: &Request, created: &init::Created) {
    let name = created.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!("Generated {} ({} files)", created.dir.display(), created.files.len());
    match &req.source {
        Source::BuiltIn(c) => {
            println!("  Name: {name}");
            println!("  Runtime: {} ({})", c.runtime, c.language.label);
            println!("  Architectures: {}", req.architecture);
            println!("  Dependency Manager: {}", c.language.manager);
            println!("  Application Template: {}{}", c.app, c.language.suffix);
        }
        Source::Location(l) => println!("  Template: {}", l.display()),
    }
    println!();
    println!("Next steps (see {}/README.md):", created.dir.display());
    println!("  cd {}", created.dir.display());
    println!("  lamb build");
    println!("  lamb local invoke -e events/event.json   # name the function if there are several");
    println!("  lamb deploy --guided");
    println!("  lamb sync --watch");
}

/// A numbered choice; Enter takes the default (1-based `default`).
fn numbered(ask: &mut dyn Ask, title: &str, items: &[String], default: usize) -> Result<usize, GuidedError> {
    ask.say(title);
    for (i, item) in items.iter().enumerate() {
        ask.say(&format!("\t{} - {item}", i + 1));
    }
    loop {
        let answer = ask.line(&format!("Choice [{default}]: "), false)?.ok_or(GuidedError::Eof)?;
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(default - 1);
        }
        match answer.parse::<usize>() {
            Ok(n) if (1..=items.len()).contains(&n) => return Ok(n - 1),
            _ => ask.say(&format!("\t`{answer}` is not one of 1-{}; type a number from the list", items.len())),
        }
    }
}

/// The questions, in `sam init`'s order: template, runtime, architecture, project name. A flag
/// already given is not asked.
pub(crate) fn ask(ask: &mut dyn Ask, args: &InitArgs) -> Result<Picked, GuidedError> {
    let app = match &args.app_template {
        Some(a) => a.clone(),
        None => {
            let items: Vec<String> = templates::APPS.iter().map(|(_, about)| about.to_string()).collect();
            let i = numbered(ask, "Which template would you like to start from?", &items, 1)?;
            templates::APPS[i].0.to_string()
        }
    };
    let (runtime, manager, app) = match &args.runtime {
        Some(r) => (r.clone(), args.dependency_manager.clone(), app),
        None => {
            let mut options = Vec::new();
            for runtime in templates::RUNTIMES {
                for lang in templates::languages(runtime) {
                    options.push((runtime, lang));
                }
            }
            let items: Vec<String> = options.iter().map(|(r, l)| format!("{r} ({}, {})", l.label, l.manager)).collect();
            let i = numbered(ask, "Which runtime would you like to use?", &items, 1)?;
            let (runtime, lang) = options[i];
            let app = if app.ends_with(lang.suffix) { app } else { format!("{app}{}", lang.suffix) };
            (runtime.to_string(), Some(lang.manager.to_string()), app)
        }
    };
    let architecture = match &args.architecture {
        Some(a) => a.clone(),
        None => {
            let items = ["x86_64".to_string(), "arm64".to_string()];
            let i = numbered(ask, "Which architecture would you like to use?", &items, 1)?;
            items[i].clone()
        }
    };
    let name = match &args.name {
        Some(n) => n.clone(),
        None => loop {
            let answer = ask.line("Project name [lamb-app]: ", false)?.ok_or(GuidedError::Eof)?;
            let answer = if answer.trim().is_empty() { "lamb-app".to_string() } else { answer.trim().to_string() };
            match init::check_name(&answer) {
                Ok(()) => break answer,
                Err(e) => ask.say(&format!("\t{e}; try again")),
            }
        },
    };
    Ok(Picked { name, runtime, app_template: app, manager, architecture })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    struct Script {
        answers: Vec<&'static str>,
        said: Vec<String>,
    }

    impl Ask for Script {
        fn line(&mut self, prompt: &str, _secret: bool) -> Result<Option<String>, GuidedError> {
            self.said.push(prompt.to_string());
            Ok((!self.answers.is_empty()).then(|| self.answers.remove(0).to_string()))
        }
        fn say(&mut self, text: &str) {
            self.said.push(text.to_string());
        }
    }

    fn args(flags: &[&str]) -> InitArgs {
        let mut argv = vec!["lamb", "init"];
        argv.extend_from_slice(flags);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Init(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn enter_everywhere_takes_the_defaults_in_brackets() {
        let mut s = Script { answers: vec!["", "", "", ""], said: vec![] };
        let p = ask(&mut s, &args(&[])).unwrap();
        assert_eq!(
            p,
            Picked {
                name: "lamb-app".into(),
                runtime: "python3.13".into(),
                app_template: "hello-world".into(),
                manager: Some("pip".into()),
                architecture: "x86_64".into(),
            }
        );
        assert!(
            s.said.iter().any(|l| l == "\t1 - Hello World: a function behind an API Gateway route"),
            "{:?}",
            s.said
        );
        assert!(s.said.iter().any(|l| l == "Choice [1]: "), "{:?}", s.said);
    }

    #[test]
    fn a_typescript_runtime_choice_picks_the_typescript_app_and_bad_answers_are_asked_again() {
        let runtimes: Vec<String> = templates::RUNTIMES
            .iter()
            .flat_map(|r| templates::languages(r).iter().map(move |l| format!("{r} {}", l.id)))
            .collect();
        let ts = runtimes.iter().position(|r| r == "nodejs22.x typescript").unwrap() + 1;
        let ts: &'static str = Box::leak(ts.to_string().into_boxed_str());
        let mut s = Script { answers: vec!["9", "2", ts, "x", "2", "1bad", "my-app"], said: vec![] };
        let p = ask(&mut s, &args(&[])).unwrap();
        assert_eq!((p.app_template.as_str(), p.runtime.as_str()), ("sqs-typescript", "nodejs22.x"));
        assert_eq!((p.architecture.as_str(), p.name.as_str()), ("arm64", "my-app"));
        assert!(s.said.iter().any(|l| l.contains("`9` is not one of 1-4")), "{:?}", s.said);
        assert!(s.said.iter().any(|l| l.contains("`1bad` cannot be the project's name")), "{:?}", s.said);
    }

    #[test]
    fn flags_given_are_not_asked_and_input_ending_early_is_an_error() {
        let mut s = Script { answers: vec![], said: vec![] };
        let a = args(&["--name", "x", "--runtime", "python3.12", "--app-template", "sqs", "--architecture", "arm64"]);
        assert_eq!(ask(&mut s, &a).unwrap().runtime, "python3.12");
        assert!(s.said.is_empty(), "{:?}", s.said);
        let mut s = Script { answers: vec!["1"], said: vec![] };
        assert!(matches!(ask(&mut s, &args(&[])), Err(GuidedError::Eof)));
    }
}
