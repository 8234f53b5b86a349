Console.WriteLine("stable-alignment: pipeline being assembled");
