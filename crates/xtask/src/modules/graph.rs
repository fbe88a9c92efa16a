//! A directed graph of modules ("A names B"), each edge with the places
//! that make it: its strongly connected components, its floors bottom up,
//! and its cycles, each shown with the line behind every step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;

/// One place where a module names another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Evidence {
    pub file: PathBuf,
    pub line: usize,
    /// The item named, as its own module calls it (or the module's name).
    pub name: String,
    /// The source line, trimmed.
    pub text: String,
}

impl Evidence {
    fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

pub struct Graph {
    names: Vec<String>,
    edges: BTreeMap<(usize, usize), BTreeSet<Evidence>>,
}

impl Graph {
    pub fn new(names: Vec<String>) -> Graph {
        Graph {
            names,
            edges: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, from: usize, to: usize, evidence: Evidence) {
        self.edges.entry((from, to)).or_default().insert(evidence);
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each `(from, to)` pair with the places that make it.
    pub fn edges(&self) -> &BTreeMap<(usize, usize), BTreeSet<Evidence>> {
        &self.edges
    }

    fn successors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges
            .range((node, 0)..(node + 1, 0))
            .map(|(&(_, to), _)| to)
    }

    /// The strongly connected components (Tarjan's), each sorted, every
    /// component after all those it depends on: bottom up.
    pub fn components(&self) -> Vec<Vec<usize>> {
        struct Tarjan<'g> {
            graph: &'g Graph,
            index: Vec<Option<usize>>,
            low: Vec<usize>,
            stack: Vec<usize>,
            on_stack: Vec<bool>,
            next: usize,
            found: Vec<Vec<usize>>,
        }
        impl Tarjan<'_> {
            fn visit(&mut self, node: usize) {
                self.index[node] = Some(self.next);
                self.low[node] = self.next;
                self.next += 1;
                self.stack.push(node);
                self.on_stack[node] = true;
                for to in self.graph.successors(node) {
                    match self.index[to] {
                        None => {
                            self.visit(to);
                            self.low[node] = self.low[node].min(self.low[to]);
                        }
                        Some(index) if self.on_stack[to] => {
                            self.low[node] = self.low[node].min(index);
                        }
                        Some(_) => {}
                    }
                }
                if Some(self.low[node]) == self.index[node] {
                    let mut component = Vec::new();
                    while let Some(member) = self.stack.pop() {
                        self.on_stack[member] = false;
                        component.push(member);
                        if member == node {
                            break;
                        }
                    }
                    component.sort_unstable();
                    self.found.push(component);
                }
            }
        }
        let count = self.names.len();
        let mut tarjan = Tarjan {
            graph: self,
            index: vec![None; count],
            low: vec![0; count],
            stack: Vec::new(),
            on_stack: vec![false; count],
            next: 0,
            found: Vec::new(),
        };
        for node in 0..count {
            if tarjan.index[node].is_none() {
                tarjan.visit(node);
            }
        }
        tarjan.found
    }

    /// The components that are cycles (more than one module).
    pub fn cyclic_components(&self) -> Vec<Vec<usize>> {
        self.components()
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect()
    }

    /// The components by floor, bottom up: each one floor above the highest
    /// it depends on.
    pub fn floors(&self) -> Vec<Vec<Vec<usize>>> {
        let components = self.components();
        let mut component_of = vec![0; self.names.len()];
        for (c, members) in components.iter().enumerate() {
            for &m in members {
                component_of[m] = c;
            }
        }
        let mut floor_of = vec![0; components.len()];
        let mut floors: Vec<Vec<Vec<usize>>> = Vec::new();
        // Bottom up already, so each component's dependencies have floors.
        for (c, members) in components.iter().enumerate() {
            let floor = members
                .iter()
                .flat_map(|&m| self.successors(m))
                .map(|to| component_of[to])
                .filter(|&d| d != c)
                .map(|d| floor_of[d] + 1)
                .max()
                .unwrap_or(0);
            floor_of[c] = floor;
            if floors.len() <= floor {
                floors.resize(floor + 1, Vec::new());
            }
            floors[floor].push(members.clone());
        }
        for floor in &mut floors {
            floor.sort();
        }
        floors
    }

    /// For every edge inside a component, the shortest cycle through it;
    /// each cycle once, as its modules in order starting from the first
    /// (the path returns to it). Every edge that closes a cycle is in one.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut cycles = BTreeSet::new();
        for component in self.cyclic_components() {
            let inside: BTreeSet<usize> = component.iter().copied().collect();
            for &(from, to) in self.edges.keys() {
                if inside.contains(&from)
                    && inside.contains(&to)
                    && let Some(back) = self.shortest_path(to, from, &inside)
                {
                    let mut cycle = vec![from];
                    cycle.extend(&back[..back.len() - 1]);
                    let start = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|&(_, &m)| &self.names[m])
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(start);
                    cycles.insert((cycle.len(), cycle));
                }
            }
        }
        cycles.into_iter().map(|(_, cycle)| cycle).collect()
    }

    /// The shortest path from `from` to `to` through `inside`, both ends included.
    fn shortest_path(
        &self,
        from: usize,
        to: usize,
        inside: &BTreeSet<usize>,
    ) -> Option<Vec<usize>> {
        let mut came_from = BTreeMap::from([(from, from)]);
        let mut queue = VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            if node == to {
                let mut path = vec![to];
                let mut at = to;
                while at != from {
                    at = came_from[&at];
                    path.push(at);
                }
                path.reverse();
                return Some(path);
            }
            for next in self.successors(node).filter(|n| inside.contains(n)) {
                if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(next) {
                    e.insert(node);
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// The floors, bottom up, a cycle's modules in braces.
    pub fn floors_text(&self) -> String {
        let mut text = String::new();
        for (floor, components) in self.floors().iter().enumerate() {
            let shown: Vec<String> = components.iter().map(|c| self.component_text(c)).collect();
            let _ = writeln!(text, "  floor {floor}: {}", shown.join(", "));
        }
        text
    }

    fn component_text(&self, members: &[usize]) -> String {
        let mut names: Vec<&str> = members.iter().map(|&m| self.names[m].as_str()).collect();
        names.sort_unstable();
        match names.as_slice() {
            [one] => (*one).to_owned(),
            many => format!("CYCLE of {} {{{}}}", many.len(), many.join(", ")),
        }
    }

    /// Each cycle as `a → b → … → a`, with the first place that makes each step.
    pub fn cycles_text(&self) -> String {
        let mut text = String::new();
        for cycle in self.cycles() {
            let mut names: Vec<&str> = cycle.iter().map(|&m| self.names[m].as_str()).collect();
            names.push(names[0]);
            let _ = writeln!(text, "  cycle: {}", names.join(" → "));
            for (i, &from) in cycle.iter().enumerate() {
                let to = cycle[(i + 1) % cycle.len()];
                let places = &self.edges[&(from, to)];
                if let Some(first) = places.first() {
                    let more = match places.len() - 1 {
                        0 => String::new(),
                        n => format!(" (+{n} more)"),
                    };
                    let _ = writeln!(
                        text,
                        "    {} → {}: {}  {}{more}",
                        self.names[from],
                        self.names[to],
                        first.place(),
                        first.text
                    );
                }
            }
        }
        text
    }

    /// Every edge, and for each name it takes its first place quoted and
    /// the lines of the others (a module is one file, so only lines differ).
    pub fn edges_text(&self) -> String {
        let mut text = String::new();
        for (&(from, to), places) in &self.edges {
            let _ = writeln!(text, "  {} → {}", self.names[from], self.names[to]);
            let mut by_name: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
            for place in places {
                by_name.entry(&place.name).or_default().push(place);
            }
            let mut firsts: Vec<(&Evidence, Vec<String>)> = by_name
                .into_values()
                .map(|places| {
                    let mut lines: Vec<usize> = places.iter().map(|p| p.line).collect();
                    lines.dedup();
                    (
                        places[0],
                        lines[1..].iter().map(ToString::to_string).collect(),
                    )
                })
                .collect();
            firsts.sort_by_key(|(first, _)| first.line);
            for (first, others) in firsts {
                let also = if others.is_empty() {
                    String::new()
                } else {
                    format!("  (also lines {})", others.join(", "))
                };
                let _ = writeln!(
                    text,
                    "      {:<18} {}  {}{also}",
                    first.name,
                    first.place(),
                    first.text
                );
            }
        }
        text
    }

    /// Graphviz: each edge once, the edges inside a cycle in red.
    pub fn dot(&self, title: &str) -> String {
        let mut component_of = vec![0; self.names.len()];
        for (c, members) in self.components().iter().enumerate() {
            for &m in members {
                component_of[m] = c;
            }
        }
        let mut text = format!("digraph \"{title}\" {{\n  rankdir=BT;\n  node [shape=box];\n");
        for name in &self.names {
            let _ = writeln!(text, "  \"{name}\";");
        }
        for &(from, to) in self.edges.keys() {
            let colour = if component_of[from] == component_of[to] {
                " [color=red]"
            } else {
                ""
            };
            let _ = writeln!(
                text,
                "  \"{}\" -> \"{}\"{colour};",
                self.names[from], self.names[to]
            );
        }
        text.push_str("}\n");
        text
    }
}
