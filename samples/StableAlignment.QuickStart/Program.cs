using StableAlignment.Core.Experiment;

// The paper's experiment in quick mode, from code: simulate an offline society, build the alignment dataset, train
// the SFT baseline and IL, IL+SC, IL+SC+RA, evaluate them and write report.md.
string folder = args.Length > 0 ? args[0] : "quickstart-run";
var experiment = new StableAlignmentExperiment(ExperimentOptions.Quick, folder);

var progress = new Progress<ExperimentProgress>(p =>
{
    if (p.Done == p.Total) Console.WriteLine($"{p.Step}: {p.Activity} done");
});
string report = await experiment.RunAsync(progress);

Console.WriteLine($"Report: {report}");
