//! The typed task forms of `enqueue`, `collect` and `schedule add` (`channel`, `trending`,
//! …), built at run time with clap's builder from each plugin's declaration
//! ([`Plugin::forms`](prismq_domain::Plugin::forms)): one argument per declared parameter,
//! so a parameter a plugin adds is a flag with no edit here. Values are passed on as typed
//! as clap reads them (an integer must be a number); their bounds and choices are checked by
//! the plugin at enqueue time, so a refusal names the parameter and what is accepted.

use clap::builder::ValueParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, Subcommand};
use serde_json::{Map, Value};

use prismq_domain::param_spec::{ParamKind, ParamSpec, TaskForm};

use super::enqueue::{RawArgs, TaskOptions};

/// Every plugin's typed forms, in the plugin list's order.
pub fn all() -> impl Iterator<Item = &'static TaskForm> {
    prismq_app::plugins::PLUGINS
        .iter()
        .flat_map(|p| p.forms().iter())
}

/// A form with its parameters as given and its queue options.
#[derive(Debug, Clone)]
pub struct FormArgs {
    /// The form, as its plugin declares it.
    pub form: &'static TaskForm,
    /// The parameters given (those not given are absent: the plugin's defaults apply).
    pub params: Map<String, Value>,
    /// Queue options.
    pub task: TaskOptions,
}

impl FormArgs {
    /// Reads `form`'s arguments from `m`.
    fn from_matches(form: &'static TaskForm, m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut params = Map::new();
        for spec in form.params {
            if let Some(v) = value(spec, m) {
                params.insert(spec.name.to_owned(), v);
            }
        }
        Ok(FormArgs {
            form,
            params,
            task: TaskOptions::from_arg_matches(m)?,
        })
    }
}

/// `spec`'s argument id, which is also its flag's name with `_` (unique per form: it must
/// not be one of the queue options).
fn id(spec: &ParamSpec) -> &'static str {
    spec.cli.flag.unwrap_or(spec.name)
}

/// The id of a boolean's `--no-` flag.
fn negated(spec: &ParamSpec) -> String {
    format!("no_{}", id(spec))
}

/// `form`'s subcommand, shown with `about`: one argument per parameter, then the queue
/// options.
pub fn command(form: &TaskForm, about: String) -> Command {
    let mut cmd = Command::new(form.name);
    for spec in form.params {
        for arg in args(spec) {
            cmd = cmd.arg(arg);
        }
    }
    // After the queue options: their struct's doc would otherwise be the subcommand's.
    TaskOptions::augment_args(cmd).about(about).long_about(None)
}

/// The argument (a boolean without default: two flags) that gives `spec`.
fn args(spec: &ParamSpec) -> Vec<Arg> {
    let id = id(spec);
    let long = id.replace('_', "-");
    let help = spec.cli.help.map_or_else(|| help(spec), str::to_owned);
    let flag = |name: String, long: String| Arg::new(name).long(long).action(ArgAction::SetTrue);
    let valued = || {
        let arg = Arg::new(id)
            .value_name(
                spec.cli
                    .value_name
                    .map_or_else(|| id.to_uppercase(), str::to_owned),
            )
            .required(spec.required)
            .help(help.clone());
        if spec.cli.positional {
            arg
        } else {
            arg.long(long.clone())
        }
    };
    match &spec.kind {
        ParamKind::Boolean { default: None } => {
            let no_help = spec
                .cli
                .negated_help
                .map_or_else(|| format!("Do not (see --{long})"), str::to_owned);
            vec![
                flag(id.to_owned(), long.clone())
                    .help(help)
                    .conflicts_with(negated(spec)),
                flag(negated(spec), format!("no-{long}")).help(no_help),
            ]
        }
        ParamKind::Boolean {
            default: Some(false),
        } => vec![flag(id.to_owned(), long).help(help)],
        ParamKind::Boolean {
            default: Some(true),
        } => {
            vec![flag(negated(spec), format!("no-{long}")).help(help)]
        }
        ParamKind::Integer { .. } => vec![valued()
            .value_parser(clap::value_parser!(i64))
            .allow_negative_numbers(true)
            .action(ArgAction::Set)],
        ParamKind::Text { .. } | ParamKind::Choice { .. } => {
            vec![valued()
                .value_parser(ValueParser::string())
                .action(ArgAction::Set)]
        }
        ParamKind::TextList { .. } => {
            let arg = valued()
                .value_parser(ValueParser::string())
                .action(ArgAction::Append);
            vec![if spec.cli.positional {
                arg.num_args(1..)
            } else {
                arg
            }]
        }
    }
}

/// The help line of a parameter without one of its own: its description and what is
/// accepted.
fn help(spec: &ParamSpec) -> String {
    let d = spec.description;
    match &spec.kind {
        ParamKind::Text { max_chars, .. } => format!("{d} (up to {max_chars} characters)"),
        ParamKind::Integer { min, max, default } => match default {
            Some(x) => format!("{d} ({min}-{max}; default {x})"),
            None => format!("{d} ({min}-{max})"),
        },
        ParamKind::Boolean { .. } => d.to_owned(),
        ParamKind::Choice { options, default } => {
            let one_of = options.join(", ");
            match default {
                Some(x) => format!("{d}: {one_of} (default {x})"),
                None => format!("{d}: {one_of}"),
            }
        }
        ParamKind::TextList { max_items, .. } => format!("{d} (up to {max_items}; repeatable)"),
    }
}

/// The value `spec` was given in `m`, as its JSON type; `None` when not given.
fn value(spec: &ParamSpec, m: &ArgMatches) -> Option<Value> {
    let id = id(spec);
    match &spec.kind {
        ParamKind::Boolean { default } => {
            let on = default.is_none_or(|d| !d) && m.get_flag(id);
            let off = default.is_none_or(|d| d) && m.get_flag(&negated(spec));
            match (on, off) {
                (true, _) => Some(Value::Bool(true)),
                (_, true) => Some(Value::Bool(false)),
                _ => None,
            }
        }
        ParamKind::Integer { .. } => m.get_one::<i64>(id).map(|n| Value::from(*n)),
        ParamKind::Text { .. } | ParamKind::Choice { .. } => {
            m.get_one::<String>(id).map(|s| Value::from(s.as_str()))
        }
        ParamKind::TextList { .. } => m
            .get_many::<String>(id)
            .map(|v| Value::from(v.cloned().collect::<Vec<String>>())),
    }
}

/// A task described by flags, for `enqueue` and `schedule add`: a plugin's typed form, or
/// `raw`.
#[derive(Debug, Clone)]
pub enum TaskKind {
    /// A plugin's typed form.
    Form(FormArgs),
    /// Any registered task type with JSON parameters.
    Raw(RawArgs),
}

impl TaskKind {
    /// Its queue options.
    pub fn task(&self) -> &TaskOptions {
        match self {
            TaskKind::Form(f) => &f.task,
            TaskKind::Raw(r) => &r.task,
        }
    }
}

const RAW: &str = "raw";

impl FromArgMatches for TaskKind {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        match m.subcommand() {
            Some((RAW, sub)) => Ok(TaskKind::Raw(RawArgs::from_arg_matches(sub)?)),
            Some((name, sub)) => match all().find(|f| f.name == name) {
                Some(form) => Ok(TaskKind::Form(FormArgs::from_matches(form, sub)?)),
                None => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
            },
            None => Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand)),
        }
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Subcommand for TaskKind {
    fn augment_subcommands(mut cmd: Command) -> Command {
        for form in all() {
            cmd = cmd.subcommand(command(form, format!("{}: {}", form.task_type, form.about)));
        }
        cmd.subcommand(
            RawArgs::augment_args(Command::new(RAW))
                .about("Any registered task type with JSON parameters")
                .long_about(None),
        )
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        name == RAW || all().any(|f| f.name == name)
    }
}

/// The forms `collect` offers (those whose plugin gives them a `collect` line).
#[derive(Debug, Clone)]
pub struct CollectKind(pub FormArgs);

fn collected() -> impl Iterator<Item = (&'static TaskForm, &'static str)> {
    all().filter_map(|f| Some((f, f.collect?)))
}

impl FromArgMatches for CollectKind {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) = m
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        let (form, _) = collected()
            .find(|(f, _)| f.name == name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))?;
        Ok(CollectKind(FormArgs::from_matches(form, sub)?))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Subcommand for CollectKind {
    fn augment_subcommands(mut cmd: Command) -> Command {
        for (form, about) in collected() {
            cmd = cmd.subcommand(command(form, about.to_owned()));
        }
        cmd
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        collected().any(|(f, _)| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    //! A declaration's parameter is a flag: a form made here, as a plugin would declare
    //! it, gets one argument per parameter, each read back as the parameter's JSON type.

    use super::*;
    use clap::Parser;
    use serde_json::json;

    const PARAMS: &[ParamSpec] = &[
        ParamSpec::required(
            "query",
            "what to search for",
            ParamKind::Text {
                max_chars: 50,
                examples: &["rust"],
            },
        )
        .positional("QUERY"),
        ParamSpec::optional(
            "page_size",
            "results per page",
            ParamKind::Integer {
                min: 1,
                max: 90,
                default: Some(20),
            },
        ),
        ParamSpec::optional(
            "order",
            "the order",
            ParamKind::Choice {
                options: &["new", "old"],
                default: Some("new"),
            },
        ),
        ParamSpec::optional("safe", "safe search", ParamKind::Boolean { default: None }),
        ParamSpec::optional(
            "tags",
            "tags to match",
            ParamKind::TextList {
                max_items: 5,
                examples: &["a"],
            },
        ),
    ];

    const FORM: TaskForm = TaskForm {
        name: "lookup",
        task_type: "lookup_search",
        about: "a lookup",
        collect: None,
        params: PARAMS,
    };

    fn parse(argv: &[&str]) -> Result<FormArgs, clap::Error> {
        let m = command(&FORM, "about".into()).try_get_matches_from(argv)?;
        FormArgs::from_matches(&FORM, &m)
    }

    #[test]
    fn every_declared_parameter_is_a_flag_read_back_as_its_type() {
        let f = parse(&[
            "lookup",
            "rust async",
            "--page-size",
            "30",
            "--order",
            "old",
            "--no-safe",
            "--tags",
            "x",
            "--tags",
            "y",
            "--priority",
            "7",
        ])
        .unwrap();
        assert_eq!(
            Value::Object(f.params),
            json!({"query": "rust async", "page_size": 30, "order": "old", "safe": false, "tags": ["x", "y"]})
        );
        assert_eq!(f.task.priority, Some(7));
        let f = parse(&["lookup", "q", "--safe"]).unwrap();
        assert_eq!(Value::Object(f.params), json!({"query": "q", "safe": true}));
    }

    #[test]
    fn help_comes_from_the_declaration_and_bad_input_is_refused_by_clap() {
        let cmd = command(&FORM, "about".into());
        let help_of = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help().map(ToString::to_string))
                .unwrap_or_else(|| panic!("no argument {id}"))
        };
        assert_eq!(help_of("page_size"), "results per page (1-90; default 20)");
        assert_eq!(help_of("order"), "the order: new, old (default new)");
        assert_eq!(help_of("no_safe"), "Do not (see --safe)");
        let e = parse(&["lookup", "q", "--page-size", "many"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        let e = parse(&["lookup"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let e = parse(&["lookup", "q", "--safe", "--no-safe"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(subcommand)]
        kind: TaskKind,
    }

    #[test]
    fn every_plugin_form_is_a_subcommand_building_only_declared_parameters() {
        let forms: Vec<&str> = all().map(|f| f.name).collect();
        assert!(forms.contains(&"channel"), "{forms:?}");
        for form in all() {
            let sub = Wrap::command_for_test();
            let sub = sub.find_subcommand(form.name).unwrap();
            for spec in form.params {
                assert!(
                    sub.get_arguments()
                        .any(|a| a.get_id() == id(spec) || a.get_id().as_str() == negated(spec)),
                    "{}: no argument for {}",
                    form.name,
                    spec.name
                );
            }
        }
        let w = Wrap::try_parse_from(["x", "channel", "@h", "--top-n", "5"]).unwrap();
        let TaskKind::Form(f) = w.kind else {
            panic!("not a form")
        };
        assert_eq!(f.form.task_type, "channel_scrape");
        assert_eq!(
            Value::Object(f.params),
            json!({"channel_url": "@h", "top_n": 5})
        );
    }

    impl Wrap {
        fn command_for_test() -> Command {
            <Wrap as clap::CommandFactory>::command()
        }
    }
}
